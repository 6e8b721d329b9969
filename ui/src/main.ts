/**
 * The live lab page: the labs, a lab's topology (#/labs/{lab}), live counters from the agent's
 * one event stream, the switch and overlay status, and actions (with confirmation) through the
 * same API and auth as every other client.
 */
import { html, nothing, render, type TemplateResult } from "lit-html";
import type {
  InterfaceView,
  LabSummary,
  LabView,
  LinkView,
  SwitchStatusView,
  TunnelView,
} from "../../src/model/views.js";
import { ApiError, api, setToken, token, Unauthorized } from "./api";
import { LiveStream, type StreamState } from "./events";
import { bps } from "./format";
import { type Selection, TopologyGraph } from "./graph";

interface PortSample {
  port: string;
  link_state: string | null;
  admin_state: string | null;
  rx_bytes: number;
  tx_bytes: number;
  rx_packets: number;
  tx_packets: number;
  rx_bps: number;
  tx_bps: number;
}

interface Confirm {
  message: string;
  run: () => Promise<unknown>;
}

const state = {
  labs: [] as LabSummary[],
  lab: undefined as string | undefined,
  view: undefined as LabView | undefined,
  tunnels: [] as TunnelView[],
  sw: undefined as SwitchStatusView | undefined,
  samples: new Map<string, PortSample>(),
  stream: "connecting" as StreamState,
  selected: undefined as Selection,
  picked: [] as string[],
  confirm: undefined as Confirm | undefined,
  askToken: false,
  busy: false,
  error: undefined as string | undefined,
  layoutMs: undefined as number | undefined,
};

const app = document.getElementById("app")!;
let graph: TopologyGraph | undefined;

const stream = new LiveStream({
  onState: (s) => {
    state.stream = s;
    if (s === "unauthorized") state.askToken = true;
    schedule();
  },
  onOpen: () => void refreshAll(),
  onEvent: (type, data) => {
    if (type === "lab") {
      const { lab } = data as { lab: string };
      refreshLabs.run();
      if (lab === state.lab) refreshLab.run();
    } else if (type === "ports") {
      for (const p of (data as { ports: PortSample[] }).ports) state.samples.set(p.port, p);
      schedule();
    } else if (type === "switch") {
      refreshSwitch.run();
      if (state.lab) refreshLab.run();
    }
  },
});

/** Runs `fn` once at a time; asked again while running, it runs once more after. */
class Coalesced {
  private running = false;
  private again = false;
  constructor(private readonly fn: () => Promise<void>) {}
  run(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.fn()
      .catch(failed)
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.run();
        }
      });
  }
}

const refreshLabs = new Coalesced(async () => {
  state.labs = await api<LabSummary[]>("GET", "/labs");
  schedule();
});
const refreshSwitch = new Coalesced(async () => {
  state.sw = await api<SwitchStatusView>("GET", "/ovs/status");
  schedule();
});
const refreshLab = new Coalesced(async () => {
  const lab = state.lab;
  if (lab === undefined) return;
  const [view, overlay] = await Promise.all([
    api<LabView>("GET", `/labs/${encodeURIComponent(lab)}`),
    api<{ tunnels: TunnelView[] }>("GET", "/overlay/status").catch(() => ({ tunnels: [] })),
  ]);
  if (lab !== state.lab) return;
  state.view = view;
  state.tunnels = overlay.tunnels.filter((t) => t.lab === lab);
  state.error = undefined;
  draw();
});

function failed(e: unknown): void {
  if (e instanceof Unauthorized) state.askToken = true;
  else
    state.error = e instanceof ApiError && e.hint ? `${e.message} (${e.hint})` : String((e as Error).message);
  schedule();
}

async function refreshAll(): Promise<void> {
  refreshLabs.run();
  refreshSwitch.run();
  if (state.lab) refreshLab.run();
}

// ---- routing: #/ and #/labs/{lab} ----

function route(first = false): void {
  const m = /^#\/labs\/([^/]+)$/.exec(location.hash);
  const lab = m ? decodeURIComponent(m[1]!) : undefined;
  if (lab === state.lab && !first) return;
  state.lab = lab;
  state.view = undefined;
  state.tunnels = [];
  state.selected = undefined;
  state.picked = [];
  state.samples.clear();
  stream.open(lab);
  schedule();
}

// ---- drawing ----

/** Changes state and redraws on the next frame. */
function set(patch: Partial<typeof state>): void {
  Object.assign(state, patch);
  schedule();
}

let frame = 0;
function schedule(): void {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    draw();
  });
}

/** Per link: rate both ways and packets, from the host ports of its ends. */
function linkTraffic(l: { a: string; b: string }): { bps: number; packets: number } {
  const s = [portOf(l.a), portOf(l.b)].map((p) => (p ? state.samples.get(p) : undefined));
  return {
    bps: s.reduce((n, x) => n + (x ? x.rx_bps : 0), 0),
    packets: s.reduce((n, x) => n + (x ? x.rx_packets : 0), 0),
  };
}

function ifaceOf(end: string): InterfaceView | undefined {
  const [node, name] = end.split(":");
  return state.view?.nodes.find((n) => n.name === node)?.interfaces.find((i) => i.name === name);
}
/** The overlay link an interface carries (it is then not free to link). */
function overlayOf(end: string): string | undefined {
  const t = state.tunnels.find((x) => `${x.node}:${x.interface}` === end);
  return t ? `overlay ${t.link}` : undefined;
}
function portOf(end: string): string | undefined {
  return ifaceOf(end)?.host_port;
}

function labels(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of state.view?.links ?? []) {
    const t = linkTraffic(l);
    out[l.id] = t.bps > 0 ? bps(t.bps) : "";
  }
  for (const t of state.tunnels) out[t.link] = `vni ${t.vni} → ${t.remote_ip}`;
  return out;
}

function draw(): void {
  render(page(), app);
  const box = document.getElementById("graph");
  if (!state.view || !box) {
    graph?.destroy();
    graph = undefined;
    return;
  }
  if (!graph || graph.cy.container() !== box) {
    graph?.destroy();
    graph = new TopologyGraph(box, (s) => {
      state.selected = s;
      schedule();
    });
  }
  const view = state.view;
  void graph.show(view, state.tunnels, labels()).then((ms) => {
    if (ms === undefined) return;
    state.layoutMs = ms;
    box.dataset.layoutMs = ms.toFixed(0);
    console.info(`layout of ${view.nodes.length} nodes, ${view.links.length} links: ${ms.toFixed(0)} ms`);
  });
  box.dataset.nodes = String(graph.cy.nodes("[kind = 'node']").length);
  box.dataset.edges = String(graph.cy.edges().length);
  box.dataset.remotes = String(graph.cy.nodes("[kind = 'remote']").length);
  graph.select(state.selected);
}

// ---- actions (each confirmed first) ----

function ask(message: string, run: () => Promise<unknown>): void {
  state.confirm = { message, run };
  schedule();
}

async function confirmed(): Promise<void> {
  const c = state.confirm;
  if (!c) return;
  state.busy = true;
  schedule();
  try {
    await c.run();
    state.error = undefined;
  } catch (e) {
    failed(e);
  } finally {
    state.busy = false;
    state.confirm = undefined;
    refreshLab.run();
  }
}

const labPath = () => `/labs/${encodeURIComponent(state.lab!)}`;

function pick(end: string): void {
  state.picked = state.picked.includes(end)
    ? state.picked.filter((e) => e !== end)
    : [...state.picked, end].slice(-2);
  schedule();
}

function linkPicked(): void {
  const [a, b] = state.picked;
  if (!a || !b) return;
  ask(`Link ${a} with ${b}?`, async () => {
    await api("POST", `${labPath()}/links`, { a, b });
    state.picked = [];
  });
}

function unlink(l: LinkView): void {
  ask(`Unlink ${l.id} (${l.a} – ${l.b})? Both ends stay, isolated.`, () =>
    api("DELETE", `${labPath()}/links/${encodeURIComponent(l.id)}`),
  );
}

function carrier(l: LinkView, to: "up" | "down"): void {
  ask(
    to === "down"
      ? `Pull the cable of ${l.id} (carrier down on both ends)?`
      : `Plug ${l.id} back in (carrier up)?`,
    () => api("PUT", `${labPath()}/links/${encodeURIComponent(l.id)}/carrier`, { state: to }),
  );
}

// ---- templates ----

function page(): TemplateResult {
  return html`
    <header>
      <a class="brand" href="#/">archetype-network</a>
      ${switchBadge()}
      <span class="stream ${state.stream}" data-testid="stream" title="the live event stream">● ${state.stream}</span>
      <button @click=${() => set({ askToken: true })}>${token() ? "Token ✓" : "Token"}</button>
    </header>
    <div class="layout">
      <nav>
        <h2>Labs</h2>
        <ul>
          ${state.labs.map(
            (l) =>
              html`<li class=${l.lab === state.lab ? "current" : ""}>
                <a href="#/labs/${encodeURIComponent(l.lab)}" data-lab=${l.lab}>${l.lab}</a>
                <small>${l.nodes} nodes, ${l.links} links</small>
              </li>`,
          )}
        </ul>
        ${state.labs.length === 0 ? html`<p class="muted">No labs yet.</p>` : nothing}
      </nav>
      <main>
        ${state.error ? html`<p class="error" role="alert">${state.error}</p>` : nothing}
        ${state.lab === undefined ? html`<p class="muted">Choose a lab.</p>` : labPage()}
      </main>
    </div>
    ${state.confirm ? confirmDialog(state.confirm) : nothing} ${state.askToken ? tokenDialog() : nothing}
  `;
}

function switchBadge(): TemplateResult {
  const sw = state.sw;
  if (!sw) return html`<span class="switch muted">switch: …</span>`;
  return html`<span class="switch ${sw.connected ? "ok" : "bad"}" data-testid="switch">
    ${sw.backend}${sw.bridge ? ` ${sw.bridge}` : ""}${sw.datapath ? ` (${sw.datapath})` : ""}:
    ${sw.connected ? "connected" : "disconnected"}, ${sw.ports.length} ports
  </span>`;
}

function labPage(): TemplateResult {
  const v = state.view;
  if (!v) return html`<p class="muted">Loading ${state.lab}…</p>`;
  return html`
    <h1>${v.lab}</h1>
    <div class="graph-row">
      <div id="graph" data-testid="graph"></div>
      <aside>${selectionPanel(v)} ${pickPanel()}</aside>
    </div>
    <p class="legend">
      <span class="key up">up</span> <span class="key down">down</span> <span class="key pending">pending</span>
      · thin: VLAN link · thick: wire · dashed: overlay to a remote host · end dots: each interface's carrier
      ${state.layoutMs !== undefined ? html` · layout ${state.layoutMs.toFixed(0)} ms` : nothing}
    </p>
    ${linksTable(v)} ${overlayTable()} ${interfacesTable(v)}
  `;
}

function selectionPanel(v: LabView): TemplateResult {
  const s = state.selected;
  if (s?.kind === "node") {
    const n = v.nodes.find((x) => x.name === s.id);
    if (!n) return html``;
    return html`<h3>Node ${n.name}</h3>
      <p class="muted">netns ${n.netns ?? "(docker)"} · ${n.origin}</p>
      <ul class="ifaces">
        ${n.interfaces.map((i) => html`<li>${ifaceLine(`${n.name}:${i.name}`, i)}</li>`)}
      </ul>`;
  }
  if (s?.kind === "link") {
    const l = v.links.find((x) => x.id === s.id);
    const o = state.tunnels.find((x) => x.link === s.id);
    if (!l && o) {
      return html`<h3>Overlay link ${o.link}</h3>
        <p>${o.node}:${o.interface} → host ${o.remote_ip} (from ${o.local_ip}), VNI ${o.vni}</p>
        <p><b class="state ${o.state}">${o.state}</b> · ${o.rx_packets}/${o.tx_packets} packets · ${o.drops} drops</p>`;
    }
    if (!l) return html``;
    const t = linkTraffic(l);
    return html`<h3>Link ${l.id}</h3>
      <p>${l.a} – ${l.b}</p>
      <p>${l.mode} ${l.vlan ?? ""} · <b class="state ${l.state}">${l.state}</b> · ${bps(t.bps)}</p>
      ${linkActions(l)}`;
  }
  return html`<p class="muted">Click a node or a link. Pick two free interfaces below to link them.</p>`;
}

function pickPanel(): TemplateResult {
  const [a, b] = state.picked;
  return html`<div class="pick">
    <p>Picked: ${a ?? "–"} ${b ? html` and ${b}` : nothing}</p>
    <button data-testid="link-picked" ?disabled=${!a || !b} @click=${linkPicked}>Link them</button>
    ${state.picked.length > 0 ? html`<button @click=${() => set({ picked: [] })}>Clear</button>` : nothing}
  </div>`;
}

function ifaceLine(end: string, i: InterfaceView): TemplateResult {
  const s = state.samples.get(i.host_port);
  const link = i.link ?? overlayOf(end);
  return html`<span class="dot ${i.carrier}" title="carrier ${i.carrier}"></span>
    ${end} <small class="muted">${i.host_port} · port ${s?.link_state ?? "?"}</small>
    ${link ? html`<small>→ ${link}</small>` : html`<small class="muted">free</small>`}`;
}

function linkActions(l: LinkView): TemplateResult {
  return html`<span class="actions">
    ${
      l.state === "down"
        ? html`<button data-action="carrier-up" @click=${() => carrier(l, "up")}>Carrier up</button>`
        : html`<button data-action="carrier-down" @click=${() => carrier(l, "down")}>Carrier down</button>`
    }
    <button data-action="unlink" @click=${() => unlink(l)}>Unlink</button>
    <button disabled title="needs the capture API (not on this agent yet)">Capture</button>
  </span>`;
}

function linksTable(v: LabView): TemplateResult {
  return html`<details open>
    <summary>Links (${v.links.length})</summary>
    <table class="links">
      <thead><tr><th>id</th><th>a</th><th>b</th><th>mode</th><th>vlan</th><th>state</th><th>rate</th><th>packets</th><th></th></tr></thead>
      <tbody>
        ${v.links.map((l) => {
          const t = linkTraffic(l);
          return html`<tr data-link=${l.id} data-state=${l.state} data-packets=${t.packets}
            class=${state.selected?.kind === "link" && state.selected.id === l.id ? "selected" : ""}
            @click=${() => set({ selected: { kind: "link", id: l.id } })}>
            <td>${l.id}</td>
            <td><span class="dot ${ifaceOf(l.a)?.carrier ?? "up"}"></span>${l.a}</td>
            <td><span class="dot ${ifaceOf(l.b)?.carrier ?? "up"}"></span>${l.b}</td>
            <td>${l.mode}</td><td>${l.vlan ?? ""}</td>
            <td><b class="state ${l.state}">${l.state}</b></td>
            <td class="num">${bps(t.bps)}</td><td class="num">${t.packets}</td>
            <td>${linkActions(l)}</td>
          </tr>`;
        })}
      </tbody>
    </table>
  </details>`;
}

function overlayTable(): TemplateResult | typeof nothing {
  if (state.tunnels.length === 0) return nothing;
  return html`<details open>
    <summary>Overlay links (${state.tunnels.length})</summary>
    <table>
      <thead><tr><th>link</th><th>end</th><th>vni</th><th>remote host</th><th>state</th><th>rx/tx packets</th><th>drops</th></tr></thead>
      <tbody>
        ${state.tunnels.map(
          (t) => html`<tr data-overlay=${t.link} data-state=${t.state}>
            <td>${t.link}</td><td>${t.node}:${t.interface}</td><td>${t.vni}</td><td>${t.remote_ip}</td>
            <td><b class="state ${t.state}">${t.state}</b>${t.error ? html` <small>${t.error}</small>` : nothing}</td>
            <td class="num">${t.rx_packets}/${t.tx_packets}</td><td class="num">${t.drops}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </details>`;
}

function interfacesTable(v: LabView): TemplateResult {
  const rows = v.nodes.flatMap((n) => n.interfaces.map((i) => ({ end: `${n.name}:${i.name}`, i })));
  return html`<details ?open=${rows.length <= 200}>
    <summary>Interfaces (${rows.length})</summary>
    <table class="ifaces">
      <thead><tr><th>interface</th><th>host port</th><th>carrier</th><th>port</th><th>link</th><th>rx</th><th>tx</th><th></th></tr></thead>
      <tbody>
        ${rows.map(({ end, i }) => {
          const s = state.samples.get(i.host_port);
          const picked = state.picked.includes(end);
          const link = i.link ?? overlayOf(end);
          return html`<tr data-end=${end} data-carrier=${i.carrier}>
            <td>${end}</td><td>${i.host_port}</td>
            <td><span class="dot ${i.carrier}"></span>${i.carrier}</td>
            <td>${s?.link_state ?? "?"}</td><td>${link ?? ""}</td>
            <td class="num">${bps(s?.rx_bps ?? 0)}</td><td class="num">${bps(s?.tx_bps ?? 0)}</td>
            <td>${
              link
                ? nothing
                : html`<button data-action="pick" class=${picked ? "on" : ""} @click=${() => pick(end)}>
                  ${picked ? "Picked" : "Pick"}
                </button>`
            }</td>
          </tr>`;
        })}
      </tbody>
    </table>
  </details>`;
}

function confirmDialog(c: Confirm): TemplateResult {
  return html`<div class="modal" role="dialog" aria-modal="true" data-testid="confirm">
    <div class="box">
      <p>${c.message}</p>
      <button data-action="cancel" ?disabled=${state.busy} @click=${() => set({ confirm: undefined })}>
        Cancel
      </button>
      <button data-action="confirm" class="primary" ?disabled=${state.busy} @click=${() => void confirmed()}>
        ${state.busy ? "Working…" : "Confirm"}
      </button>
    </div>
  </div>`;
}

function tokenDialog(): TemplateResult {
  const save = (e: Event) => {
    e.preventDefault();
    const input = document.getElementById("token-input") as HTMLInputElement;
    setToken(input.value.trim() || null);
    state.askToken = false;
    stream.open(state.lab);
  };
  return html`<div class="modal" role="dialog" aria-modal="true" data-testid="token">
    <form class="box" @submit=${save}>
      <p>This agent has a secret. Its token (ARCHETYPE_AGENT_SECRET) is kept in this tab only.</p>
      <input id="token-input" type="password" autocomplete="off" placeholder="token" />
      <button type="button" @click=${() => set({ askToken: false })}>Cancel</button>
      <button type="submit" class="primary">Use token</button>
    </form>
  </div>`;
}

window.addEventListener("hashchange", () => route());
route(true);
