/**
 * TypeBox schemas of every body, path parameter and answer of the HTTP API. They describe
 * exactly the shapes of src/model/views.ts; the checks at the end of this file fail to compile
 * when the two drift apart.
 */
import { type Static, type TSchema, Type } from "@sinclair/typebox";
// Name patterns are the name rules' own (the services validate with the same ones).
import { END_PATTERN, IFNAME_PATTERN, ID_PATTERN as NAME_PATTERN } from "../model/names.js";
import type {
  Impairment,
  ImpairmentView,
  InterfaceCounters,
  InterfaceView,
  LabChanges,
  LabSpec,
  LabSummary,
  LabView,
  LinkView,
  NodeInterfacesSpec,
  NodeView,
  OrphanView,
  OverlaySpec,
  SwitchPortView,
  SwitchStatusView,
  TunnelView,
} from "../model/views.js";

const OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
export const IPV4_PATTERN = `^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`;

const Name = (description: string) => Type.String({ pattern: NAME_PATTERN, description });
const IfName = (description: string) => Type.String({ pattern: IFNAME_PATTERN, description });
const End = Type.String({ pattern: END_PATTERN, description: "NODE:IF, e.g. r1:eth1" });
const Ipv4 = (description: string) => Type.String({ pattern: IPV4_PATTERN, description });
const Mtu = Type.Integer({ minimum: 68, maximum: 65535, description: "MTU of the interface" });
const Vlan = Type.Union([Type.Integer(), Type.Null()]);
const NullableString = Type.Union([Type.String(), Type.Null()]);
const Carrier = Type.Union([Type.Literal("up"), Type.Literal("down")]);
const Count = Type.Integer({ minimum: 0 });

// ---- path parameters ----

export const LabParams = Type.Object({ lab: Name("lab id") });
export const LabNodeParams = Type.Object({ lab: Name("lab id"), node: Name("node name") });
export const LabLinkParams = Type.Object({ lab: Name("lab id"), id: Name("link id") });
export const InterfaceParams = Type.Object({
  lab: Name("lab id"),
  node: Name("node name"),
  if: IfName("interface name inside the node"),
});
export const OverlayParams = Type.Object({ lab: Name("lab id"), link: Name("link id") });

// ---- bodies ----

const InterfaceSpec = Type.Object(
  { name: IfName("interface name inside the node, e.g. eth1"), mtu: Type.Optional(Mtu) },
  { additionalProperties: false },
);

const NetnsOrPid = {
  netns: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 4096,
      description: "network namespace name (ip netns) or path, e.g. /proc/1234/ns/net",
    }),
  ),
  pid: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 4194304, description: "pid of a process in the node's netns" }),
  ),
};

const LinkModeSchema = Type.Union([Type.Literal("vlan"), Type.Literal("wire")], {
  description:
    "vlan: the ends share a VLAN (tagged frames are dropped); wire: a cable, every frame crosses unchanged (802.1Q, QinQ, LLDP, LACP, STP)",
});

export const LinkSpecSchema = Type.Object(
  {
    a: End,
    b: End,
    id: Type.Optional(Name("link id; derived from the ends when absent")),
    mode: Type.Optional(LinkModeSchema),
  },
  { additionalProperties: false },
);

// ---- impairments (validated again, with the rules across fields, by src/labs/impairment.ts) ----

const Ms = (description: string) =>
  Type.Optional(Type.Number({ minimum: 0, maximum: 60_000, description: `${description}, ms (0: none)` }));
const Pct = (description: string) =>
  Type.Optional(Type.Number({ minimum: 0, maximum: 100, description: `${description}, percent (0: none)` }));

export const ImpairmentDirectionSchema = Type.Object(
  {
    delay_ms: Ms("added delay"),
    jitter_ms: Ms("delay variation (needs delay_ms)"),
    loss_pct: Pct("packets dropped"),
    corrupt_pct: Pct("packets with a bit flipped"),
    duplicate_pct: Pct("packets sent twice"),
    reorder_pct: Pct("packets sent at once, ahead of the delayed ones (needs delay_ms)"),
    rate_kbit: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 100_000_000,
        description: "rate limit, kbit/s (1000 bit/s; at least 8; 0: none); alone it needs no netem (tbf)",
      }),
    ),
  },
  { additionalProperties: false },
);

export const ImpairmentSchema = Type.Object(
  { a_to_b: Type.Optional(ImpairmentDirectionSchema), b_to_a: Type.Optional(ImpairmentDirectionSchema) },
  {
    additionalProperties: false,
    description: "per direction: a_to_b is what reaches end b from end a; absent or {}: none",
  },
);

/** A link in a lab body: a link, and its impairment (absent: none). */
export const LabLinkSpecSchema = Type.Object(
  { ...LinkSpecSchema.properties, impairment: Type.Optional(ImpairmentSchema) },
  { additionalProperties: false },
);

const CountString = (max: number, description: string) =>
  Type.Optional(Type.String({ pattern: `^[1-9][0-9]{0,${String(max).length - 1}}$`, description }));

export const CaptureQuery = Type.Object(
  {
    count: CountString(10_000_000, "stop after this many packets"),
    seconds: Type.Optional(
      Type.String({ pattern: "^[0-9]{1,5}(\\.[0-9]{1,3})?$", description: "stop after this many seconds" }),
    ),
    filter: Type.Optional(
      Type.String({ maxLength: 1024, description: "BPF expression (pcap-filter(7)), e.g. icmp" }),
    ),
  },
  { additionalProperties: false },
);

export const LabSpecSchema = Type.Object(
  {
    nodes: Type.Array(
      Type.Object(
        {
          name: Name("node name"),
          ...NetnsOrPid,
          host: Type.Optional(
            Name(
              "ovn backend: the chassis the node runs on (its namespace is there); default: this agent's host",
            ),
          ),
          interfaces: Type.Array(InterfaceSpec, { maxItems: 1024 }),
        },
        { additionalProperties: false },
      ),
      { maxItems: 4096 },
    ),
    links: Type.Array(LabLinkSpecSchema, { maxItems: 16384 }),
  },
  { additionalProperties: false },
);

export const NodeInterfacesSpecSchema = Type.Object(
  { ...NetnsOrPid, interfaces: Type.Array(InterfaceSpec, { minItems: 1, maxItems: 1024 }) },
  { additionalProperties: false },
);

export const CarrierBody = Type.Object({ state: Carrier }, { additionalProperties: false });

export const OverlayAttachQuery = Type.Object(
  {
    wait: Type.Optional(
      Type.Union([Type.Literal("true"), Type.Literal("false")], {
        description:
          "true: answer only once ovs-vswitchd has created the VXLAN port and the tunnel forwards (adds its tens of ms)",
      }),
    ),
  },
  { additionalProperties: false },
);

export const OverlaySpecSchema = Type.Object(
  {
    lab: Name("lab id"),
    link: Name("link id (the same on both hosts)"),
    node: Name("the local node"),
    interface: IfName("the local node's interface"),
    vni: Type.Integer({ minimum: 1, maximum: 16777215, description: "VXLAN network identifier" }),
    local_ip: Ipv4("this host's tunnel IPv4 address"),
    remote_ip: Ipv4("the other host's tunnel IPv4 address"),
    mtu: Type.Optional(Mtu),
    mode: Type.Optional(LinkModeSchema),
  },
  { additionalProperties: false },
);

// ---- answers ----

export const InterfaceViewSchema = Type.Object({
  name: Type.String(),
  host_port: Type.String(),
  mtu: Type.Integer(),
  vlan: Vlan,
  carrier: Carrier,
  oper_state: Type.Union(
    [Type.Literal("up"), Type.Literal("admin_down"), Type.Literal("peer_down"), Type.Literal("no_carrier")],
    {
      description:
        "admin_down: the API pulled its cable; peer_down: its link peer is down; no_carrier: its own node has it down (ovn: or its host is gone, see reason)",
    },
  ),
  present: Type.Boolean(),
  link: NullableString,
  host: Type.Optional(Type.String({ description: "ovn backend: the chassis the node runs on" })),
  binding: Type.Optional(
    Type.Object(
      { chassis: NullableString, up: Type.Boolean() },
      { description: "ovn backend: the chassis OVN bound the logical port to, and whether its flows are in" },
    ),
  ),
  reason: Type.Optional(
    Type.String({
      description: "why it does not forward though its cable is in (ovn: its or its peer's host is gone)",
    }),
  ),
});

export const NodeViewSchema = Type.Object({
  name: Type.String(),
  netns: NullableString,
  origin: Type.Union([Type.Literal("api"), Type.Literal("plugin")]),
  state: Type.Union([Type.Literal("ok"), Type.Literal("lost")], {
    description:
      "lost: the node's namespace is gone, or its pid or path points to another one now (ovn: or its host is gone)",
  }),
  reason: Type.Optional(Type.String({ description: "why the node is lost" })),
  host: Type.Optional(Type.String({ description: "ovn backend: the chassis the node runs on" })),
  interfaces: Type.Array(InterfaceViewSchema),
});

export const InterfaceCountersSchema = Type.Object(
  {
    rx_packets: Count,
    tx_packets: Count,
    rx_bytes: Count,
    tx_bytes: Count,
    rx_dropped: Count,
    tx_dropped: Count,
    rx_errors: Count,
    tx_errors: Count,
  },
  { description: "from the node's side (rx: reached the node); the switch refreshes them every 5 s" },
);
const EndCounters = Type.Union([InterfaceCountersSchema, Type.Null()]);

export const LinkViewSchema = Type.Object({
  id: Type.String(),
  a: Type.String(),
  b: Type.String(),
  mode: LinkModeSchema,
  vlan: Vlan,
  state: Type.Union([Type.Literal("up"), Type.Literal("down"), Type.Literal("pending")]),
  reason: Type.Optional(
    Type.String({ description: "why it is down other than a pulled cable (ovn: an end's host is gone)" }),
  ),
  impairment: Type.Optional(ImpairmentSchema),
  counters: Type.Optional(Type.Object({ a: EndCounters, b: EndCounters })),
});

export const ImpairmentViewSchema = Type.Object({
  lab: Type.String(),
  id: Type.String(),
  a: Type.String(),
  b: Type.String(),
  a_to_b: ImpairmentDirectionSchema,
  b_to_a: ImpairmentDirectionSchema,
  applied: Type.Union(
    [Type.Object({ a_to_b: ImpairmentDirectionSchema, b_to_a: ImpairmentDirectionSchema }), Type.Null()],
    { description: "read back from tc on the host ends now; null while the link is pending" },
  ),
  in_sync: Type.Boolean({ description: "applied is what is asked (reconcile repairs a difference)" }),
});

export const LabViewSchema = Type.Object({
  lab: Type.String(),
  nodes: Type.Array(NodeViewSchema),
  links: Type.Array(LinkViewSchema),
  reconcile_error: Type.Optional(Type.String()),
});

export const LabChangesSchema = Type.Object({
  nodes_added: Type.Array(Type.String()),
  nodes_removed: Type.Array(Type.String()),
  interfaces_added: Type.Array(Type.String()),
  interfaces_removed: Type.Array(Type.String()),
  links_added: Type.Array(Type.String()),
  links_removed: Type.Array(Type.String()),
  overlays_detached: Type.Array(Type.String()),
  impairments_changed: Type.Array(Type.String()),
});

export const PutLabAnswer = Type.Object({ ...LabViewSchema.properties, changes: LabChangesSchema });

export const LabSummarySchema = Type.Object({ lab: Type.String(), nodes: Count, links: Count });
export const LabListAnswer = Type.Array(LabSummarySchema);
export const LinkListAnswer = Type.Array(LinkViewSchema);

export const TunnelViewSchema = Type.Object({
  lab: Type.String(),
  link: Type.String(),
  mode: LinkModeSchema,
  vni: Type.Integer(),
  vlan: Vlan,
  port: Type.String(),
  local_ip: Type.String(),
  remote_ip: Type.String(),
  node: Type.String(),
  interface: Type.String(),
  mtu: Type.Integer(),
  state: Type.Union(
    [
      Type.Literal("up"),
      Type.Literal("down"),
      Type.Literal("pending"),
      Type.Literal("error"),
      Type.Literal("missing"),
    ],
    {
      description: "pending: ovs-vswitchd is still creating the VXLAN port; error: it could not (see error)",
    },
  ),
  error: Type.Optional(Type.String()),
  rx_packets: Count,
  tx_packets: Count,
  rx_bytes: Count,
  tx_bytes: Count,
  drops: Count,
});
export const OverlayStatusAnswer = Type.Object({ tunnels: Type.Array(TunnelViewSchema) });

export const SwitchPortViewSchema = Type.Object({
  name: Type.String(),
  vlan: Vlan,
  lab: NullableString,
  node: NullableString,
  interface: NullableString,
  link: NullableString,
  ofport: Type.Union([Type.Integer(), Type.Null()]),
  link_state: NullableString,
  type: Type.String(),
  rx_packets: Count,
  tx_packets: Count,
  rx_bytes: Count,
  tx_bytes: Count,
});

export const SwitchStatusViewSchema = Type.Object({
  backend: Type.String(),
  bridge: NullableString,
  fail_mode: NullableString,
  datapath: NullableString,
  connected: Type.Boolean(),
  ports: Type.Array(SwitchPortViewSchema),
});

export const OrphanViewSchema = Type.Object({
  kind: Type.Union([
    Type.Literal("veth"),
    Type.Literal("port"),
    Type.Literal("overlay_port"),
    Type.Literal("plugin_endpoint"),
    Type.Literal("state"),
    Type.Literal("logical_switch"),
  ]),
  name: Type.String(),
  reason: Type.String(),
});
export const AuditAnswer = Type.Object({ orphans: Type.Array(OrphanViewSchema) });
export const CleanupRunAnswer = Type.Object({ removed: Type.Array(OrphanViewSchema) });

export const HealthAnswer = Type.Object({
  status: Type.Literal("ok"),
  version: Type.String(),
  backend: Type.String(),
  datapath: NullableString,
});

export const DeletedLabAnswer = Type.Object({ lab: Type.String(), deleted: Type.Literal(true) });
export const DeletedLinkAnswer = Type.Object({
  lab: Type.String(),
  id: Type.String(),
  deleted: Type.Literal(true),
});
export const DeletedOverlayAnswer = Type.Object({
  lab: Type.String(),
  link: Type.String(),
  deleted: Type.Literal(true),
});

export const ErrorAnswer = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: "stable error code, e.g. LAB_NOT_FOUND" }),
      message: Type.String(),
      hint: Type.Optional(Type.String({ description: "what to do about it" })),
    }),
  },
  { description: "every failure" },
);

/** Answer schemas for a route: its success status plus the error shape for 4xx and 5xx. */
export function answers<S extends TSchema, C extends 200 | 201>(status: C, schema: S) {
  return { [status]: schema, "4xx": ErrorAnswer, "5xx": ErrorAnswer } as { [K in C]: S } & {
    "4xx": typeof ErrorAnswer;
    "5xx": typeof ErrorAnswer;
  };
}

// ---- compile-time checks: schemas and view types must not drift apart ----

/** Compiles only when A is assignable to B. */
type Assignable<A extends B, B> = [A, B];

export type SchemaChecks = [
  Assignable<Static<typeof InterfaceViewSchema>, InterfaceView>,
  Assignable<InterfaceView, Static<typeof InterfaceViewSchema>>,
  Assignable<Static<typeof NodeViewSchema>, NodeView>,
  Assignable<NodeView, Static<typeof NodeViewSchema>>,
  Assignable<Static<typeof LinkViewSchema>, LinkView>,
  Assignable<LinkView, Static<typeof LinkViewSchema>>,
  Assignable<Static<typeof LabViewSchema>, LabView>,
  Assignable<LabView, Static<typeof LabViewSchema>>,
  Assignable<Static<typeof LabSummarySchema>, LabSummary>,
  Assignable<LabSummary, Static<typeof LabSummarySchema>>,
  Assignable<Static<typeof LabChangesSchema>, LabChanges>,
  Assignable<LabChanges, Static<typeof LabChangesSchema>>,
  Assignable<Static<typeof TunnelViewSchema>, TunnelView>,
  Assignable<TunnelView, Static<typeof TunnelViewSchema>>,
  Assignable<Static<typeof SwitchPortViewSchema>, SwitchPortView>,
  Assignable<SwitchPortView, Static<typeof SwitchPortViewSchema>>,
  Assignable<Static<typeof SwitchStatusViewSchema>, SwitchStatusView>,
  Assignable<SwitchStatusView, Static<typeof SwitchStatusViewSchema>>,
  Assignable<Static<typeof InterfaceCountersSchema>, InterfaceCounters>,
  Assignable<InterfaceCounters, Static<typeof InterfaceCountersSchema>>,
  Assignable<Static<typeof ImpairmentSchema>, Impairment>,
  Assignable<Impairment, Static<typeof ImpairmentSchema>>,
  Assignable<Static<typeof ImpairmentViewSchema>, ImpairmentView>,
  Assignable<ImpairmentView, Static<typeof ImpairmentViewSchema>>,
  Assignable<Static<typeof OrphanViewSchema>, OrphanView>,
  Assignable<OrphanView, Static<typeof OrphanViewSchema>>,
  // Bodies: what passes validation is what the services take.
  Assignable<Static<typeof LabSpecSchema>, LabSpec>,
  Assignable<Static<typeof NodeInterfacesSpecSchema>, NodeInterfacesSpec>,
  Assignable<Static<typeof OverlaySpecSchema>, OverlaySpec>,
  Assignable<Static<typeof PutLabAnswer>, LabView & { changes: LabChanges }>,
  Assignable<LabView & { changes: LabChanges }, Static<typeof PutLabAnswer>>,
];
