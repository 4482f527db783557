/**
 * The gateway's clock, as seen from here: a safe lower bound on its current time.
 *
 * `since=` compares against the gateway's own clock (it stamps `received_at`
 * when a mail or text arrives), so a mark taken with this machine's clock
 * would be wrong by however far the two clocks disagree.  Every answer
 * carries an HTTP `Date` header: the gateway's time, floored to the second,
 * taken between the request leaving (`sent`, monotonic) and the answer
 * arriving (`received`).  So `gateway time - monotonic time` lies in
 * `[date - received, date + 1 - sent)`; answers are intersected, and one that
 * contradicts the interval (a stepped clock) restarts it.  `now()` is the
 * monotonic time plus the low end: never later than the gateway's time.
 */

/** Seconds subtracted from this machine's clock before any answer came. */
export const UNOBSERVED_MARGIN = 2.0;

/** Seconds on a monotonic clock. */
export function monotonic(): number {
  return performance.now() / 1000;
}

export class ServerClock {
  private low: number | null = null;
  private high: number | null = null;

  constructor(
    private readonly mono: () => number = monotonic,
    private readonly wall: () => number = () => Date.now() / 1000,
  ) {}

  /** Take in one answer's `Date` header, with the monotonic times around its request. */
  observe(dateHeader: string | null, sent: number, received: number): void {
    if (!dateHeader) return;
    const ms = Date.parse(dateHeader);
    if (Number.isNaN(ms)) return;
    const date = ms / 1000;
    const low = date - received;
    const high = date + 1 - sent;
    if (this.low === null || this.high === null || low > this.high || high < this.low) {
      this.low = low;
      this.high = high;
    } else {
      this.low = Math.max(this.low, low);
      this.high = Math.min(this.high, high);
    }
  }

  get observed(): boolean {
    return this.low !== null;
  }

  /** Seconds the gateway's time may be later than `now()`; null before any answer. */
  get uncertainty(): number | null {
    return this.low === null || this.high === null ? null : this.high - this.low;
  }

  /** UNIX seconds no later than the gateway's current time. */
  now(): number {
    if (this.low === null) return this.wall() - UNOBSERVED_MARGIN;
    return this.mono() + this.low;
  }
}
