/**
 * The agent's one live stream (GET /events, Server-Sent Events) read with fetch, so it carries
 * the Authorization header (EventSource cannot send headers, and a token never goes in a URL).
 * Reconnects with back-off; `onOpen` runs on every (re)connect so the page refetches what it
 * may have missed.
 */
import { createParser } from "eventsource-parser";
import { authHeaders } from "./api";

export type StreamState = "connecting" | "live" | "down" | "unauthorized";

export interface StreamHandlers {
  onEvent(type: string, data: unknown): void;
  onState(state: StreamState): void;
  onOpen(): void;
}

export class LiveStream {
  private abort: AbortController | undefined;
  private retryTimer: number | undefined;
  private backoffMs = 500;

  constructor(private readonly handlers: StreamHandlers) {}

  /** (Re)opens the stream for a lab (its counters only), or for all labs. */
  open(lab: string | undefined): void {
    this.close();
    const abort = new AbortController();
    this.abort = abort;
    void this.run(lab, abort.signal);
  }

  close(): void {
    this.abort?.abort();
    this.abort = undefined;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private async run(lab: string | undefined, signal: AbortSignal): Promise<void> {
    this.handlers.onState("connecting");
    const url = lab === undefined ? "/events" : `/events?lab=${encodeURIComponent(lab)}`;
    try {
      const res = await fetch(url, { headers: { accept: "text/event-stream", ...authHeaders() }, signal });
      if (res.status === 401) {
        this.handlers.onState("unauthorized");
        return;
      }
      if (!res.ok || !res.body) throw new Error(`${res.status}`);
      this.backoffMs = 500;
      this.handlers.onState("live");
      this.handlers.onOpen();
      const parser = createParser({
        onEvent: (e) => {
          try {
            this.handlers.onEvent(e.event ?? "message", JSON.parse(e.data));
          } catch (err) {
            console.error("bad event", err);
          }
        },
      });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(value);
      }
    } catch {
      if (signal.aborted) return;
    }
    if (signal.aborted) return;
    this.handlers.onState("down");
    this.retryTimer = window.setTimeout(() => this.open(lab), this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, 10_000);
  }
}
