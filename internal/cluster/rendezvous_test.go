package cluster

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

const queueCount = 10_000

func TestOwnerNoMembers(t *testing.T) {
	if m, ok := Owner("orders", nil); ok {
		t.Errorf("Owner(orders, nil) = %+v, true; want false", m)
	}
}

func TestOwnerOneMember(t *testing.T) {
	only := Member{Name: "a", Addr: "127.0.0.1:7946", APIAddr: "http://a.test:8080", State: StateAlive}
	got, ok := Owner("orders", []Member{only})
	if !ok || got != only {
		t.Errorf("Owner(orders, [a]) = %+v, %v; want %+v, true", got, ok, only)
	}
}

// TestOwnerKnownValues pins the hash: nodes of different versions must
// pick the same owners, so these values may never change.
func TestOwnerKnownValues(t *testing.T) {
	members := testMembers(5)
	want := map[string]string{
		"orders":           "node-4",
		"payments":         "node-5",
		"emails":           "node-4",
		"queue-0":          "node-5",
		"queue-1":          "node-2",
		"_transfer.eu-w":   "node-1",
		"a-very-long-name": "node-1",
		"":                 "node-2",
	}
	for queue, name := range want {
		got, ok := Owner(queue, members)
		if !ok || got.Name != name {
			t.Errorf("Owner(%q) = %s, %v; want %s", queue, got.Name, ok, name)
		}
	}
}

func TestOwnerIgnoresMemberOrder(t *testing.T) {
	members := testMembers(5)
	shuffled := slices.Clone(members)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range queueCount {
		queue := queueName(i)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		want, _ := Owner(queue, members)
		got, _ := Owner(queue, shuffled)
		if got.Name != want.Name {
			t.Fatalf("Owner(%q) = %s with members in order %v, %s in order %v",
				queue, got.Name, names(shuffled), want.Name, names(members))
		}
	}
}

func TestOwnerReturnsWholeMember(t *testing.T) {
	members := testMembers(3)
	got, ok := Owner("orders", members)
	if !ok {
		t.Fatal("Owner(orders) = false with 3 members")
	}
	if !slices.Contains(members, got) {
		t.Errorf("Owner(orders) = %+v, which is not one of the members given", got)
	}
}

func TestOwnerSpread(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d members", n), func(t *testing.T) {
			counts := ownerCounts(testMembers(n))
			mean := float64(queueCount) / float64(n)
			for name, count := range counts {
				if dev := (float64(count) - mean) / mean; dev < -0.15 || dev > 0.15 {
					t.Errorf("%s owns %d of %d queues, %+.1f%% from the mean %.0f; want within 15%%",
						name, count, queueCount, 100*dev, mean)
				}
			}
			if len(counts) != n {
				t.Errorf("%d of %d members own queues: %v", len(counts), n, counts)
			}
		})
	}
}

func TestOwnerMemberRemoved(t *testing.T) {
	all := testMembers(5)
	for _, removed := range all {
		t.Run(removed.Name, func(t *testing.T) {
			rest := slices.DeleteFunc(slices.Clone(all), func(m Member) bool { return m.Name == removed.Name })
			moved := 0
			for i := range queueCount {
				queue := queueName(i)
				before, _ := Owner(queue, all)
				after, _ := Owner(queue, rest)
				if before.Name == removed.Name {
					moved++
					continue
				}
				if after.Name != before.Name {
					t.Fatalf("queue %q moved from %s to %s when %s was removed", queue, before.Name, after.Name, removed.Name)
				}
			}
			if moved == 0 {
				t.Errorf("%s owned no queue before it was removed", removed.Name)
			}
		})
	}
}

func TestOwnerMemberAdded(t *testing.T) {
	before := testMembers(5)
	added := Member{Name: "node-6", Addr: "10.0.0.6:7946", APIAddr: "http://node-6.test:8080", State: StateAlive}
	after := append(slices.Clone(before), added)

	moved := 0
	for i := range queueCount {
		queue := queueName(i)
		oldOwner, _ := Owner(queue, before)
		newOwner, _ := Owner(queue, after)
		if newOwner.Name == oldOwner.Name {
			continue
		}
		if newOwner.Name != added.Name {
			t.Fatalf("queue %q moved from %s to %s, not to the new member %s", queue, oldOwner.Name, newOwner.Name, added.Name)
		}
		moved++
	}

	// Expected: 1/6 of the queues. The bounds allow 20% either way.
	want := float64(queueCount) / 6
	if f := float64(moved); f < 0.8*want || f > 1.2*want {
		t.Errorf("%d of %d queues moved to the new member, want about %.0f", moved, queueCount, want)
	}
}

func BenchmarkOwner(b *testing.B) {
	members := testMembers(5)
	for b.Loop() {
		Owner("orders-eu-west-1", members)
	}
}

// testMembers returns n members named node-1 to node-n.
func testMembers(n int) []Member {
	members := make([]Member, n)
	for i := range members {
		name := fmt.Sprintf("node-%d", i+1)
		members[i] = Member{
			Name:    name,
			Addr:    fmt.Sprintf("10.0.0.%d:7946", i+1),
			APIAddr: "http://" + name + ".test:8080",
			State:   StateAlive,
		}
	}
	return members
}

// queueName returns the name of test queue i, in one of several naming
// styles.
func queueName(i int) string {
	styles := []string{"queue-%d", "orders-eu-west-%d", "tenant_%d_events", "%d"}
	return strings.Replace(styles[i%len(styles)], "%d", fmt.Sprint(i), 1)
}

// ownerCounts returns how many of queueCount queues each member owns.
func ownerCounts(members []Member) map[string]int {
	counts := make(map[string]int)
	for i := range queueCount {
		owner, _ := Owner(queueName(i), members)
		counts[owner.Name]++
	}
	return counts
}
