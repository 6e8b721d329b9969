import { AgentError } from "../common/errors.js";

/**
 * RFC 7047 streams are JSON values concatenated with no delimiter. This splitter scans bytes,
 * tracking string/escape state and bracket depth, and hands each complete top-level value to
 * `onValue`. Scanning bytes (not characters) is safe: every structural character is ASCII and
 * every byte of a multi-byte UTF-8 sequence is >= 0x80.
 *
 * A value larger than `maxMessageBytes`, a byte that cannot start a value, or text that is not
 * JSON calls `onError` once; after that the splitter ignores input (the connection is unusable).
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

export class JsonStreamSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private failed = false;

  constructor(
    private readonly onValue: (value: unknown) => void,
    private readonly onError: (error: AgentError) => void,
    readonly maxMessageBytes: number = DEFAULT_MAX_MESSAGE_BYTES,
  ) {}

  /** True once an error was reported: all further input is ignored. */
  get hasFailed(): boolean {
    return this.failed;
  }

  push(chunk: Buffer): void {
    let start = 0;
    for (let i = 0; i < chunk.length && !this.failed; i++) {
      const c = chunk[i]!;
      if (this.depth === 0) {
        if (isWhitespace(c)) continue;
        if (c !== OPEN_BRACE && c !== OPEN_BRACKET) {
          this.fail(`unexpected byte 0x${c.toString(16).padStart(2, "0")} between JSON values`);
          return;
        }
        this.depth = 1;
        start = i;
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === BACKSLASH) this.escaped = true;
        else if (c === QUOTE) this.inString = false;
        continue;
      }
      if (c === QUOTE) this.inString = true;
      else if (c === OPEN_BRACE || c === OPEN_BRACKET) this.depth++;
      else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        this.depth--;
        if (this.depth === 0) {
          const piece = chunk.subarray(start, i + 1);
          if (this.size + piece.length > this.maxMessageBytes) {
            this.tooBig(this.size + piece.length);
            return;
          }
          const whole = this.parts.length === 0 ? piece : Buffer.concat([...this.parts, piece]);
          this.parts = [];
          this.size = 0;
          start = i + 1;
          this.emit(whole);
        }
      }
    }
    if (this.depth > 0 && !this.failed) {
      const rest = chunk.subarray(start);
      this.size += rest.length;
      if (this.size > this.maxMessageBytes) {
        this.tooBig(this.size);
        return;
      }
      this.parts.push(rest);
    }
  }

  private emit(bytes: Buffer): void {
    let value: unknown;
    try {
      value = JSON.parse(bytes.toString("utf8"));
    } catch (e) {
      this.fail(`malformed JSON: ${(e as Error).message}`);
      return;
    }
    this.onValue(value);
  }

  private tooBig(size: number): void {
    this.fail(`message exceeds ${this.maxMessageBytes} bytes (at least ${size} bytes)`);
  }

  private fail(reason: string): void {
    this.failed = true;
    this.parts = [];
    this.size = 0;
    this.onError(
      new AgentError(
        "OVSDB_PROTOCOL",
        `invalid OVSDB stream from peer: ${reason}`,
        "is the remote really an ovsdb-server? check the remote address",
      ),
    );
  }
}
