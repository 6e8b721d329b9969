/**
 * The topology: lab nodes, links between them (wire and VLAN links drawn apart), and overlay
 * links to a node standing for their remote host. Cytoscape.js draws on a canvas, so hundreds
 * of links stay smooth; the layout runs only when the set of nodes or links changes.
 */
import cytoscape, { type Core, type ElementDefinition } from "cytoscape";
import type { LabView, TunnelView } from "../../src/model/views.js";

export type Selection = { kind: "node"; id: string } | { kind: "link"; id: string } | undefined;

const STYLE: cytoscape.StylesheetJson = [
  {
    selector: "node",
    style: {
      "background-color": "#2b6cb0",
      label: "data(label)",
      "font-size": 10,
      color: "#1a202c",
      "text-valign": "bottom",
      "text-margin-y": 3,
      width: 22,
      height: 22,
      "min-zoomed-font-size": 7,
    },
  },
  { selector: "node[kind = 'remote']", style: { shape: "diamond", "background-color": "#805ad5" } },
  { selector: "node:selected", style: { "border-width": 3, "border-color": "#d69e2e" } },
  {
    selector: "edge",
    style: {
      width: 2,
      "curve-style": "bezier",
      "line-color": "#a0aec0",
      label: "data(label)",
      "font-size": 8,
      "text-rotation": "autorotate",
      "text-background-color": "#ffffff",
      "text-background-opacity": 0.8,
      "min-zoomed-font-size": 7,
      "source-arrow-shape": "circle",
      "target-arrow-shape": "circle",
      "arrow-scale": 0.6,
      "source-arrow-color": "#38a169",
      "target-arrow-color": "#38a169",
    },
  },
  { selector: "edge[state = 'up']", style: { "line-color": "#38a169" } },
  { selector: "edge[state = 'down']", style: { "line-color": "#e53e3e" } },
  { selector: "edge[state = 'pending']", style: { "line-color": "#a0aec0" } },
  { selector: "edge[mode = 'vlan']", style: { "line-style": "solid" } },
  { selector: "edge[mode = 'wire']", style: { width: 4, "line-style": "solid", "line-cap": "square" } },
  {
    selector: "edge[mode = 'overlay']",
    style: { "line-style": "dashed", "line-dash-pattern": [6, 3], "line-color": "#805ad5" },
  },
  { selector: "edge[mode = 'overlay'][state = 'up']", style: { "line-color": "#805ad5" } },
  { selector: "edge[ca = 'down']", style: { "source-arrow-color": "#e53e3e" } },
  { selector: "edge[cb = 'down']", style: { "target-arrow-color": "#e53e3e" } },
  { selector: "edge:selected", style: { width: 5, "overlay-opacity": 0.15, "overlay-color": "#d69e2e" } },
];

export interface EdgeLabel {
  /** Link id or overlay link id -> label text (the link's rate). */
  [id: string]: string;
}

/**
 * Cytoscape injects a <style> for its container unless an element with this id exists; a strict
 * CSP forbids that, so a placeholder stands in and style.css carries the rule.
 */
function preventInjectedStyle(): void {
  const id = "__________cytoscape_stylesheet";
  if (document.getElementById(id)) return;
  const placeholder = document.createElement("meta");
  placeholder.id = id;
  document.head.append(placeholder);
}

export class TopologyGraph {
  readonly cy: Core;
  private shape = "";

  constructor(
    container: HTMLElement,
    private readonly onSelect: (s: Selection) => void,
  ) {
    preventInjectedStyle();
    this.cy = cytoscape({
      container,
      style: STYLE,
      wheelSensitivity: 0.3,
      minZoom: 0.05,
      maxZoom: 4,
      textureOnViewport: true,
      hideEdgesOnViewport: true,
    });
    this.cy.on("tap", "node", (e) => this.onSelect({ kind: "node", id: e.target.data("name") }));
    this.cy.on("tap", "edge", (e) => this.onSelect({ kind: "link", id: e.target.data("link") }));
    this.cy.on("tap", (e) => {
      if (e.target === this.cy) this.onSelect(undefined);
    });
  }

  /**
   * Shows a lab; resolves with the layout's duration (ms) when the nodes or links changed and a
   * layout ran, or undefined when only states changed.
   */
  show(view: LabView, tunnels: readonly TunnelView[], labels: EdgeLabel): Promise<number | undefined> {
    const elements = toElements(view, tunnels, labels);
    const shape = elements
      .map((e) => `${e.data.id}`)
      .sort()
      .join(",");
    if (shape === this.shape) {
      this.cy.batch(() => {
        for (const el of elements) this.cy.getElementById(el.data.id as string).data(el.data);
      });
      return Promise.resolve(undefined);
    }
    this.shape = shape;
    const t0 = performance.now();
    this.cy.batch(() => {
      this.cy.elements().remove();
      this.cy.add(elements);
    });
    const nodes = this.cy.nodes().length;
    return new Promise((resolve) => {
      const layout = this.cy.layout(
        nodes <= 1
          ? { name: "grid" }
          : {
              name: "cose",
              animate: false,
              randomize: true,
              // Fewer rounds for big labs: the picture settles well before the default 1000.
              numIter: nodes > 150 ? 250 : nodes > 50 ? 500 : 1000,
              nodeRepulsion: () => 8000,
              idealEdgeLength: () => 60,
              nodeDimensionsIncludeLabels: true,
            },
      );
      layout.one("layoutstop", () => {
        this.cy.fit(undefined, 30);
        // A small lab fitted to the box would be drawn huge.
        if (this.cy.zoom() > 1.5) {
          this.cy.zoom(1.5);
          this.cy.center();
        }
        resolve(performance.now() - t0);
      });
      layout.run();
    });
  }

  /** Only the rate labels and states, without a layout. */
  relabel(labels: EdgeLabel): void {
    this.cy.batch(() => {
      this.cy.edges().forEach((e) => {
        const text = labels[e.data("link") as string] ?? "";
        if (e.data("label") !== text) e.data("label", text);
      });
    });
  }

  select(s: Selection): void {
    this.cy.elements(":selected").unselect();
    if (s?.kind === "node") this.cy.getElementById(`n:${s.id}`).select();
    if (s?.kind === "link") this.cy.getElementById(`l:${s.id}`).select();
  }

  destroy(): void {
    this.cy.destroy();
  }
}

function toElements(view: LabView, tunnels: readonly TunnelView[], labels: EdgeLabel): ElementDefinition[] {
  const carrier = new Map<string, string>();
  const out: ElementDefinition[] = [];
  for (const n of view.nodes) {
    out.push({ group: "nodes", data: { id: `n:${n.name}`, name: n.name, label: n.name, kind: "node" } });
    for (const i of n.interfaces) carrier.set(`${n.name}:${i.name}`, i.carrier);
  }
  const nodeOf = (end: string) => `n:${end.split(":")[0]}`;
  for (const l of view.links) {
    out.push({
      group: "edges",
      data: {
        id: `l:${l.id}`,
        link: l.id,
        source: nodeOf(l.a),
        target: nodeOf(l.b),
        state: l.state,
        mode: l.mode,
        ca: carrier.get(l.a) ?? "up",
        cb: carrier.get(l.b) ?? "up",
        label: labels[l.id] ?? "",
      },
    });
  }
  const remotes = new Set<string>();
  for (const t of tunnels) {
    if (!remotes.has(t.remote_ip)) {
      remotes.add(t.remote_ip);
      out.push({
        group: "nodes",
        data: { id: `r:${t.remote_ip}`, name: t.remote_ip, label: `host ${t.remote_ip}`, kind: "remote" },
      });
    }
    if (!view.nodes.some((n) => n.name === t.node)) continue;
    out.push({
      group: "edges",
      data: {
        id: `o:${t.link}`,
        link: t.link,
        source: `n:${t.node}`,
        target: `r:${t.remote_ip}`,
        state: t.state === "up" ? "up" : t.state === "down" ? "down" : "pending",
        mode: "overlay",
        ca: carrier.get(`${t.node}:${t.interface}`) ?? "up",
        cb: "up",
        label: labels[t.link] ?? `vni ${t.vni}`,
      },
    });
  }
  return out;
}
