import { AgentError } from "../common/errors.js";
import { encodeMessage, MessageType } from "./message.js";

/**
 * A port's admin state as plain data, encoded as an OpenFlow 1.3 PORT_MOD that changes only
 * OFPPC_PORT_DOWN (the mask). OVS applies it by setting the port's netdev administratively up or
 * down (for a veth: the kernel's IFF_UP), in ovs-vswitchd itself: no process to start.
 */
export interface PortMod {
  /** The port's OpenFlow number (Interface.ofport). */
  portNo: number;
  /** The port's MAC (Interface.mac_in_use): OVS refuses a PORT_MOD whose address differs. */
  hwAddr: string;
  down: boolean;
}

const OFPPC_PORT_DOWN = 1 << 0;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function encodePortMod(m: PortMod, xid: number): Buffer {
  if (!MAC.test(m.hwAddr))
    throw new AgentError(
      "BAD_REQUEST",
      `OpenFlow port ${m.portNo}: ${JSON.stringify(m.hwAddr)} is not a MAC address`,
    );
  if (!Number.isInteger(m.portNo) || m.portNo < 1 || m.portNo > 0xffffff00)
    throw new AgentError("BAD_REQUEST", `OpenFlow port number ${m.portNo} is not a physical port`);
  // port_no u32, pad[4], hw_addr[6], pad[2], config u32, mask u32, advertise u32 (0: unchanged), pad[4]
  const body = Buffer.alloc(32);
  body.writeUInt32BE(m.portNo, 0);
  Buffer.from(m.hwAddr.replaceAll(":", ""), "hex").copy(body, 8);
  body.writeUInt32BE(m.down ? OFPPC_PORT_DOWN : 0, 16);
  body.writeUInt32BE(OFPPC_PORT_DOWN, 20);
  return encodeMessage(MessageType.PORT_MOD, xid, body);
}
