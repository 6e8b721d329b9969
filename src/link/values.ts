import { AgentError } from "../common/errors.js";

export const MTU_MIN = 68;
export const MTU_MAX = 65535;
/** Interface groups are u32; 0 is "default", which every link starts in. */
export const GROUP_MAX = 0xffff_ffff;
/** IFALIASZ is 256 including the NUL. */
export const ALIAS_MAX = 255;

export function validateMtu(mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < MTU_MIN || mtu > MTU_MAX) {
    throw new AgentError(
      "BAD_REQUEST",
      `MTU ${JSON.stringify(mtu)} must be an integer ${MTU_MIN}-${MTU_MAX}`,
    );
  }
  return mtu;
}

export function validateGroup(group: number, what = "interface group"): number {
  if (!Number.isInteger(group) || group < 0 || group > GROUP_MAX) {
    throw new AgentError("BAD_REQUEST", `${what} ${JSON.stringify(group)} must be an integer 0-${GROUP_MAX}`);
  }
  return group;
}

/** Aliases travel through `ip -batch`, which splits on whitespace and honours quotes. */
export function validateAlias(alias: string): string {
  if (
    typeof alias !== "string" ||
    alias.length === 0 ||
    alias.length > ALIAS_MAX ||
    !/^[\x21-\x7e]+$/.test(alias)
  ) {
    throw new AgentError(
      "INVALID_NAME",
      `alias ${JSON.stringify(alias)} is not valid: use 1-${ALIAS_MAX} printable ASCII characters without whitespace`,
      "e.g. lab1/r1/eth1",
    );
  }
  if (/["'\\]/.test(alias) || alias.startsWith("#")) {
    throw new AgentError(
      "INVALID_NAME",
      `alias ${JSON.stringify(alias)} must not contain quotes or \\ or start with #`,
    );
  }
  return alias;
}

/** A unicast MAC as `ip` takes it: six lower-case hex pairs, the multicast bit clear. */
export function validateUnicastMac(mac: string): string {
  if (
    typeof mac !== "string" ||
    !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac) ||
    (Number.parseInt(mac.slice(0, 2), 16) & 1) !== 0
  ) {
    throw new AgentError(
      "BAD_REQUEST",
      `MAC address ${JSON.stringify(mac)} is not a unicast address in the form 02:00:00:00:00:01`,
    );
  }
  return mac;
}
