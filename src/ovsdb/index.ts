export { type CacheChange, type Row, type RowUpdate2, TableCache, type TableUpdates2 } from "./cache.js";
export {
  APPLIED_COUNTERS,
  type AppliedCounter,
  OvsdbClient,
  type OvsdbClientOptions,
  type TransactOptions,
} from "./client.js";
export { type Condition, type ConditionFunction, eq, eqUuid, excludes, includes, ne } from "./condition.js";
export { type OperationError, OvsdbTransactError } from "./error.js";
export { DEFAULT_MAX_MESSAGE_BYTES, JsonStreamSplitter } from "./json-stream.js";
export {
  type BridgeRow,
  decodeBridge,
  decodeInterface,
  decodeOpenVswitch,
  decodePort,
  type InterfaceRow,
  MONITORED_COLUMNS,
  type MonitoredTable,
  type OpenVswitchRow,
  type PortRow,
} from "./models.js";
export {
  add,
  type Mutation,
  type Mutator,
  mapDeleteKeys,
  mapInsert,
  mapSetKey,
  mapSetKeys,
  setDelete,
  setInsert,
  sub,
} from "./mutation.js";
export {
  comment,
  del,
  insert,
  mutate,
  type Operation,
  type OperationResult,
  type RowData,
  select,
  update,
  wait,
} from "./operation.js";
export type { DatabaseSchema } from "./schema.js";
export {
  type Atom,
  applyUpdate2Modify,
  decodeIntMap,
  decodeMap,
  decodeOptional,
  decodeSet,
  decodeUuid,
  map,
  type NamedUuid,
  namedUuid,
  type OvsMap,
  type OvsSet,
  set,
  type Uuid,
  uuid,
  type Value,
} from "./value.js";
