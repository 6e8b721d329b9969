/** The OpenFlow 1.3 client: the agent's flows on a bridge (wires between ports), ports' admin state. */
export { OPENFLOW_TARGET, OpenflowClient, type OpenflowClientOptions } from "./client.js";
export { OpenflowRequestError, type SwitchError } from "./error.js";
export type { FlowCommand, FlowMod, OutputAction } from "./flow-mod.js";
export type { FlowRemoved } from "./flow-removed.js";
export type { FlowFilter, FlowStats } from "./flow-stats.js";
export type { Match } from "./match.js";
export type { PortMod } from "./port-mod.js";
export { OFPP_ANY, OFPP_NORMAL } from "./ports.js";
