/**
 * The hang guard of a wait for an answer on a socket. A blocked event loop runs expired timers
 * before it reads its sockets, so an answer that came in time would lose to the timer; expiry
 * waits for this turn's poll (setImmediate runs after it), where that answer is read. `expire`
 * must check that the answer is still missing.
 */
export function answerDeadline(ms: number, expire: () => void): NodeJS.Timeout {
  return setTimeout(() => setImmediate(expire), ms);
}
