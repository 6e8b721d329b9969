import { AgentError } from "../common/errors.js";
import { HEADER_BYTES, type Message } from "./message.js";

/**
 * Splits a byte stream into OpenFlow messages by the header's length field. A length below the
 * header size cannot be framed: the stream is broken and the connection must be dropped.
 */
export class FrameStream {
  private buf: Buffer = Buffer.alloc(0);

  constructor(
    private readonly onMessage: (m: Message) => void,
    private readonly onError: (e: AgentError) => void,
  ) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= HEADER_BYTES) {
      const length = this.buf.readUInt16BE(2);
      if (length < HEADER_BYTES) {
        this.buf = Buffer.alloc(0);
        this.onError(
          new AgentError("OPENFLOW_PROTOCOL", `the switch sent an OpenFlow message of length ${length}`),
        );
        return;
      }
      if (this.buf.length < length) return;
      const frame = this.buf.subarray(0, length);
      this.buf = this.buf.subarray(length);
      this.onMessage({
        version: frame.readUInt8(0),
        type: frame.readUInt8(1),
        xid: frame.readUInt32BE(4),
        body: Buffer.from(frame.subarray(HEADER_BYTES)),
      });
    }
  }
}
