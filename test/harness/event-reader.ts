/** A live-page event stream (`GET /events`) read with fetch, as the page does. */
import assert from "node:assert/strict";
import { createParser } from "eventsource-parser";
import type { PortSample } from "../../src/api/live-feed.js";

export interface Received {
  type: string;
  data: unknown;
  at: number;
}

/** A stream read with fetch (as the page does); `next` waits for a matching event with a deadline. */
export class EventReader {
  readonly events: Received[] = [];
  ended = false;
  private readonly abort = new AbortController();
  private readonly waiters = new Set<() => void>();
  readonly done: Promise<void>;

  constructor(url: string, token: string) {
    this.done = this.read(url, token);
  }

  private async read(url: string, token: string): Promise<void> {
    const res = await fetch(url, {
      headers: { authorization: `Bearer ${token}` },
      signal: this.abort.signal,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    const parser = createParser({
      onEvent: (e) => {
        this.events.push({ type: e.event ?? "message", data: JSON.parse(e.data), at: performance.now() });
        for (const w of this.waiters) w();
      },
    });
    try {
      for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) parser.feed(chunk);
    } catch (e) {
      if (!this.abort.signal.aborted) throw e;
    } finally {
      this.ended = true;
      for (const w of this.waiters) w();
    }
  }

  /** The first event from index `from` on that matches, waiting up to `timeoutMs`. */
  next(pred: (e: Received) => boolean, timeoutMs: number, from = 0): Promise<Received> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.events.slice(from).find(pred);
        if (hit) {
          done();
          resolve(hit);
        } else if (this.ended) {
          done();
          reject(new Error("the stream ended"));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching event within ${timeoutMs} ms; got ${this.events.map((e) => e.type)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  close(): void {
    this.abort.abort();
  }
}

/** The port samples of a `ports` event. */
export function samples(e: Received): PortSample[] {
  return (e.data as { ports: PortSample[] }).ports;
}
