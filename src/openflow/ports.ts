/** Reserved OpenFlow port numbers (OpenFlow 1.3 section 7.2.1) the agent uses. */
export const OFPP_NORMAL = 0xfffffffa;
export const OFPP_ANY = 0xffffffff;
/** Any group (no group filter). */
export const OFPG_ANY = 0xffffffff;
/** Every table (deletes and stats). */
export const OFPTT_ALL = 0xff;
