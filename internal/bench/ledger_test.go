package bench

import "testing"

func TestViewOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		arrivals []int64
		want     []outcome
		dup, ooo int64
		missing  []int64 // seqs up to 8 that never arrived
	}{
		{"in order", []int64{1, 2, 3, 4}, []outcome{inOrder, inOrder, inOrder, inOrder}, 0, 0, []int64{5, 6, 7, 8}},
		{"duplicates", []int64{1, 1, 2, 2, 1}, []outcome{inOrder, duplicate, inOrder, duplicate, duplicate}, 3, 0, []int64{3, 4, 5, 6, 7, 8}},
		// A gap that never fills is loss, not disorder.
		{"gap", []int64{1, 2, 4, 5}, []outcome{inOrder, inOrder, inOrder, inOrder}, 0, 0, []int64{3, 6, 7, 8}},
		// The late arrival fills the gap and is out of order; the contiguous
		// prefix then runs past what had arrived above it.
		{"late arrival", []int64{1, 3, 4, 2, 5}, []outcome{inOrder, inOrder, inOrder, outOfOrder, inOrder}, 0, 1, []int64{6, 7, 8}},
		{"reversed", []int64{3, 2, 1}, []outcome{inOrder, outOfOrder, outOfOrder}, 0, 2, []int64{4, 5, 6, 7, 8}},
		// A duplicate of a seq held above a gap is still a duplicate.
		{"duplicate above a gap", []int64{2, 2, 1, 2}, []outcome{inOrder, duplicate, outOfOrder, duplicate}, 2, 1, []int64{3, 4, 5, 6, 7, 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newView()
			for i, seq := range tc.arrivals {
				if got := v.receive(seq); got != tc.want[i] {
					t.Fatalf("arrival %d (seq %d): outcome %d, want %d", i, seq, got, tc.want[i])
				}
			}
			if v.duplicated != tc.dup || v.outOfOrder != tc.ooo {
				t.Fatalf("duplicated %d, out of order %d; want %d, %d", v.duplicated, v.outOfOrder, tc.dup, tc.ooo)
			}
			var missing []int64
			for seq := int64(1); seq <= 8; seq++ {
				if !v.has(seq) {
					missing = append(missing, seq)
				}
			}
			if len(missing) != len(tc.missing) {
				t.Fatalf("missing %v, want %v", missing, tc.missing)
			}
			for i := range missing {
				if missing[i] != tc.missing[i] {
					t.Fatalf("missing %v, want %v", missing, tc.missing)
				}
			}
		})
	}
}

func TestLedgerTotals(t *testing.T) {
	// Conversation 0: users 0 and 1 (a pair). Conversation 1: users 2, 3, 4
	// (a group).
	l := newLedger([][]int{{0, 1}, {2, 3, 4}}, 5)

	// The pair: 0 sends seqs 1, 3; 1 sends 2, 4. User 1 never gets 3 and
	// gets 1 twice; user 0 gets everything, 4 before 2.
	l.ack(0, 1)
	l.ack(1, 2)
	l.ack(0, 3)
	l.ack(1, 4)
	for _, seq := range []int64{1, 3, 4, 2} {
		l.deliver(0, seq)
	}
	for _, seq := range []int64{1, 1, 2, 4} {
		l.deliver(1, seq)
	}

	// The group: 2 sends 1, 2; 3 sends 3; 4 sends 4, which the server
	// stored but never acknowledged (the run ended first), so nobody
	// missing it is a loss. User 3 misses 2; user 4 misses 1 and 3; user 2
	// gets all of 1..4 (its own among them).
	l.ack(2, 1)
	l.ack(2, 2)
	l.ack(3, 3)
	for _, seq := range []int64{1, 2, 3, 4} {
		l.deliver(2, seq)
	}
	for _, seq := range []int64{1, 3} {
		l.deliver(3, seq)
	}
	for _, seq := range []int64{2, 4, 2} {
		l.deliver(4, seq)
	}

	lost, dup, ooo := l.totals()
	// Lost: 3 at user 1; 2 at user 3; 1 and 3 at user 4.
	// Duplicated: 1 at user 1; 2 at user 4.
	// Out of order: 2 at user 0 (after 4).
	if lost != 4 || dup != 2 || ooo != 1 {
		t.Fatalf("lost %d, duplicated %d, out of order %d; want 4, 2, 1", lost, dup, ooo)
	}
}
