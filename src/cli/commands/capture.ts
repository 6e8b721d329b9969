import { createWriteStream, type WriteStream } from "node:fs";
import { Writable } from "node:stream";
import type { Command } from "commander";
import { InvalidArgumentError, Option } from "commander";
import { seg, UsageError } from "../client.js";
import { ctxOf, parseIntOption } from "../context.js";
import { PcapReader, summarize } from "../pcap-summary.js";

function parseSeconds(text: string): number {
  if (!/^\d{1,5}(\.\d{1,3})?$/.test(text) || Number(text) <= 0)
    throw new InvalidArgumentError("--seconds must be a number of seconds above 0");
  return Number(text);
}

/**
 * `archnet capture LAB LINK|NODE:IF [EXPR...]`: the agent's pcap stream of a link (both
 * directions) or an interface; `--overlay`: LINK is an overlay link (`archnet overlay ls`, the
 * same LAB LINK as `overlay rm`), captured on this host's end. To a file (-w), to stdout when it is piped (`| wireshark -k -i -`,
 * `| tcpdump -r -`), or as a line per frame in a terminal. Ctrl-C ends it (the agent's tcpdump too).
 */
export function registerCapture(program: Command): void {
  program
    .command("capture")
    .description(
      "capture a link (both directions), NODE:IF, or an overlay link (--overlay) as pcap: to -w FILE, to stdout when piped, else a line per frame",
    )
    .argument("<lab>")
    .argument("<target>", "a link id, NODE:IF, or with --overlay an overlay link's id")
    .argument("[filter...]", "a BPF expression, e.g. icmp or tcp port 179 (as tcpdump takes it)")
    .addOption(
      new Option(
        "--overlay",
        "TARGET is an overlay link (see `archnet overlay ls`): capture its end on this agent's host",
      ),
    )
    .addOption(new Option("-w, --write <file>", "write the pcap to FILE (- for stdout)"))
    .addOption(
      new Option("-c, --count <n>", "stop after this many packets").argParser(parseIntOption("--count")),
    )
    .addOption(new Option("--seconds <s>", "stop after this many seconds").argParser(parseSeconds))
    .action(
      async (
        lab: string,
        target: string,
        filterWords: string[],
        opts: { overlay?: boolean; write?: string; count?: number; seconds?: number },
        cmd: Command,
      ) => {
        const ctx = ctxOf(cmd);
        const colon = target.indexOf(":");
        if (opts.overlay && colon !== -1)
          throw new UsageError(`"${target}" is not an overlay link id`, "see `archnet overlay ls`, e.g. l9");
        const path = opts.overlay
          ? `/overlay/links/${seg(lab)}/${seg(target)}/capture`
          : colon === -1
            ? `/labs/${seg(lab)}/links/${seg(target)}/capture`
            : `/labs/${seg(lab)}/nodes/${seg(target.slice(0, colon))}/interfaces/${seg(target.slice(colon + 1))}/capture`;
        if (colon === 0 || colon === target.length - 1)
          throw new UsageError(`"${target}" is not a link id or NODE:IF`, "e.g. l1 or r1:eth1");
        const q = new URLSearchParams();
        if (opts.count !== undefined) q.set("count", String(opts.count));
        if (opts.seconds !== undefined) q.set("seconds", String(opts.seconds));
        if (filterWords.length > 0) q.set("filter", filterWords.join(" "));
        const query = q.size > 0 ? `?${q}` : "";

        const toStdout = opts.write === "-" || (opts.write === undefined && !process.stdout.isTTY);
        const ctrl = new AbortController();
        const stop = () => ctrl.abort();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
        const res = await ctx.client.stream(path + query, ctrl.signal);
        let out: Writable | WriteStream;
        let frames = 0;
        if (toStdout) out = process.stdout;
        else if (opts.write !== undefined) out = createWriteStream(opts.write);
        else {
          const reader = new PcapReader();
          out = new Writable({
            write(chunk: Buffer, _enc, done) {
              for (const f of reader.push(chunk)) {
                frames++;
                process.stdout.write(`${summarize(f)}\n`);
              }
              done();
            },
          });
          const what = opts.overlay ? `overlay link ${target}` : target;
          process.stderr.write(`capturing ${what} of lab ${lab}; Ctrl-C ends\n`);
        }
        // A reader that went away (`| head`) ends the capture.
        out.on("error", stop);
        let bytes = 0;
        try {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            bytes += chunk.length;
            if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
          }
        } catch (e) {
          if (!ctrl.signal.aborted) throw e;
        } finally {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
        }
        if (out !== process.stdout) await new Promise<void>((r) => out.end(() => r()));
        if (opts.write !== undefined && opts.write !== "-")
          process.stderr.write(`wrote ${bytes} bytes of pcap to ${opts.write}\n`);
        else if (!toStdout) process.stderr.write(`${frames} packets\n`);
      },
    );
}
