export { IFNAME_MAX, NETNS_NAME_MAX, validateIfName, validateNetnsName } from "../model/names.js";
export { CARRIER_HELPER, untilCarrier } from "./carrier.js";
export {
  type BatchFailure,
  IpBatchError,
  type IpBatchOptions,
  ipBatch,
  ipCommand,
  ipJson,
  runIp,
} from "./ip.js";
export { deleteGroup, deleteLinks, deleteMany, setGroup, setLinkUp, setMtu } from "./link-ops.js";
export { getLink, type LinkInfo, listLinks } from "./links.js";
export {
  checkNodeNetns,
  describeNetns,
  NETNS_RUN_DIR,
  type NetnsIdentity,
  type NetnsRef,
  netnsArg,
  netnsLost,
  netnsNotFound,
  netnsPath,
  parseNetnsRef,
} from "./netns.js";
export { addNetns, deleteNetns } from "./netns-ops.js";
export { type DeviceRef, disableTxOffload } from "./offload.js";
export {
  isEmptyShape,
  listRootQdiscs,
  NETEM_FIELDS,
  needsNetem,
  netemMissing,
  parseRootQdisc,
  parseShapeText,
  type QdiscShape,
  qdiscLine,
  type RootQdisc,
  rootQdisc,
  SHAPE_FIELDS,
  sameShape,
  shapeFrom,
  shapeText,
  tcBatch,
} from "./tc.js";
export { validateAlias, validateGroup, validateMtu, validateUnicastMac } from "./values.js";
export { createVeths, createVethsInHost, type HostVethSpec, type VethSpec } from "./veth.js";
