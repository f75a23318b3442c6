package github

import "container/list"

// lru remembers the last n strings (delivery ids, signatures).
type lru struct {
	n     int
	order *list.List // front: newest
	items map[string]*list.Element
}

func newLRU(n int) *lru { return &lru{n: n, order: list.New(), items: map[string]*list.Element{}} }

func (l *lru) has(k string) bool { _, ok := l.items[k]; return ok }

func (l *lru) add(k string) {
	if el, ok := l.items[k]; ok {
		l.order.MoveToFront(el)
		return
	}
	l.items[k] = l.order.PushFront(k)
	if l.order.Len() > l.n {
		old := l.order.Back()
		l.order.Remove(old)
		delete(l.items, old.Value.(string))
	}
}
