import { existsSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { UI_ROOT } from "../../src/api/routes/ui.js";
import { startApi } from "../../src/api/server.js";
import { silentLogger } from "../../src/common/log.js";
import { onCleanup, scoped } from "../lib/cleanup.js";
import { startEnv } from "../lib/env.js";
import { figure, type ScenarioResult } from "../lib/report.js";
import { makeTopology } from "../lib/topology.js";

const CHROMIUM = "/usr/bin/chromium";
const NAME = "live page in headless Chromium";

/** Scenario 10: the live page (/ui/) on a lab of `links` links: layout time and time to a drawn page. */
export async function livePage(links: number): Promise<ScenarioResult> {
  const params = { links };
  if (!existsSync(CHROMIUM)) {
    return {
      id: 10,
      name: NAME,
      status: "skipped",
      reason: `no ${CHROMIUM} (make setup-test)`,
      params,
      figures: [],
    };
  }
  if (!existsSync(join(UI_ROOT, "index.html"))) {
    return {
      id: 10,
      name: NAME,
      status: "skipped",
      reason: "the page is not built (make build)",
      params,
      figures: [],
    };
  }
  return scoped(async () => {
    const { t } = await startEnv();
    const topo = await makeTopology(links, "bui");
    // Interfaces 200 at a time, then the links: one huge transaction waits long on ovs-vswitchd.
    for (let n = 50; n < topo.spec.nodes.length; n += 50) {
      await t.agent.labs.putLab("big", { nodes: topo.spec.nodes.slice(0, n), links: [] });
    }
    await t.agent.labs.putLab("big", topo.spec);
    const api = await startApi(t.agent.services, { logger: silentLogger() });
    onCleanup("API", () => api.close());
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    onCleanup("chromium", () => browser.close());
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const t0 = performance.now();
    await page.goto(`${api.address}/ui/#/labs/big`);
    const graph = page.locator(`[data-testid=graph][data-edges="${links}"][data-layout-ms]`);
    await graph.waitFor({ timeout: 120_000 });
    const ready = performance.now() - t0;
    const layout = Number(await graph.getAttribute("data-layout-ms"));
    return {
      id: 10,
      name: NAME,
      status: "ran",
      params: { ...params, nodes: topo.spec.nodes.length },
      figures: [
        figure(
          { name: `layout of ${links} links`, unit: "ms", agent: layout, target: "< 2000 ms" },
          (f) => f.agent < 2000,
        ),
        figure({ name: "page drawn (load, fetch, layout)", unit: "ms", agent: ready }),
      ],
    };
  });
}
