package bench

// view is one receiver's record of one conversation's messages, by seq.
// Seqs are the conversation's own numbering (1, 2, 3, ... with no gaps), so
// a receiver that gets every message in order sees seq = next each time.
// One goroutine (the receiver's) owns a view.
type view struct {
	next  int64              // every seq below next has arrived; starts at 1
	max   int64              // the highest seq that has arrived
	above map[int64]struct{} // seqs above next that arrived after a gap

	duplicated int64 // arrivals of a seq that had arrived before
	outOfOrder int64 // first arrivals of a seq below one that arrived earlier
}

// outcome is what receive made of one arrival.
type outcome int

const (
	inOrder    outcome = iota // the first arrival, after every lower seq seen so far
	outOfOrder                // the first arrival, but a higher seq came before it
	duplicate                 // it had arrived before
)

func newView() *view { return &view{next: 1} }

// receive records the arrival of seq.
func (v *view) receive(seq int64) outcome {
	if v.has(seq) {
		v.duplicated++
		return duplicate
	}
	res := inOrder
	if seq < v.max {
		v.outOfOrder++
		res = outOfOrder
	}
	v.max = max(v.max, seq)
	if seq != v.next {
		if v.above == nil {
			v.above = make(map[int64]struct{})
		}
		v.above[seq] = struct{}{}
		return res
	}
	v.next++
	for {
		if _, ok := v.above[v.next]; !ok {
			break
		}
		delete(v.above, v.next)
		v.next++
	}
	return res
}

// has reports whether seq has arrived.
func (v *view) has(seq int64) bool {
	if seq < v.next {
		return true
	}
	_, ok := v.above[seq]
	return ok
}

// ledger holds what the run needs to say, once it is over, which
// acknowledged messages never reached a member: each conversation's
// members, each sender's acknowledged seqs, each receiver's view.
//
// While the run goes on, a user's acked list is appended to only by that
// user's ack goroutine and its view changed only by its receiver goroutine;
// lost is called after both have ended.
type ledger struct {
	members [][]int   // by conversation: user indexes
	convOf  []int     // by user: its conversation (one per user)
	acked   [][]int64 // by user: seqs of its sends the server acknowledged
	views   []*view   // by user: its view of its conversation
}

func newLedger(members [][]int, users int) *ledger {
	l := &ledger{
		members: members,
		convOf:  make([]int, users),
		acked:   make([][]int64, users),
		views:   make([]*view, users),
	}
	for c, ms := range members {
		for _, u := range ms {
			l.convOf[u] = c
		}
	}
	for u := range l.views {
		l.views[u] = newView()
	}
	return l
}

// ack records that the server acknowledged user's send with seq.
func (l *ledger) ack(user int, seq int64) { l.acked[user] = append(l.acked[user], seq) }

// deliver records that seq of user's conversation reached user.
func (l *ledger) deliver(user int, seq int64) outcome { return l.views[user].receive(seq) }

// totals counts, over every receiver: acknowledged messages of the other
// members that never reached it (lost), arrivals of a message already
// there (duplicated), and first arrivals after a later message
// (outOfOrder).
func (l *ledger) totals() (lost, duplicated, outOfOrder int64) {
	for _, ms := range l.members {
		for _, s := range ms {
			for _, seq := range l.acked[s] {
				for _, r := range ms {
					if r != s && !l.views[r].has(seq) {
						lost++
					}
				}
			}
		}
	}
	for _, v := range l.views {
		duplicated += v.duplicated
		outOfOrder += v.outOfOrder
	}
	return lost, duplicated, outOfOrder
}
