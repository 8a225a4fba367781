package jetstream

// Abandon closes the queue as a crash would: the connection goes without
// handing back the deliveries this node holds, so the other nodes take them
// when the consumers' AckWait has passed, whatever their Due. Close, by
// contrast, hands each back due when its Due or lease ends. Tests use
// Abandon to kill a node.
func (q *Queue) Abandon() { q.crash() }
