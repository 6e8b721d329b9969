/**
 * Shared isolation (ARCHETYPE_AGENT_ISOLATION=shared): unlinked ports wait in one parking VLAN,
 * kept apart by a drop flow each for what they send. The flows live with the wires (flows/);
 * the rooms that park and unpark ports (ports/, links/, the overlay) see only this.
 */
export interface Parking {
  /** Drop flows for these OpenFlow ports (a port about to be made, or leaving a link), applied. */
  drop(ofports: readonly number[]): Promise<void>;
  /** Their drop flows gone (the ports joined a VLAN link or an overlay), applied. */
  undrop(ofports: readonly number[]): Promise<void>;
}

/** OpenFlow numbers the agent may ask for (OFPP_MAX is 0xff00): above what OVS hands out itself. */
export const OFPORT_REQUEST_MIN = 20_000;
export const OFPORT_REQUEST_MAX = 65_279;
