// Runs one Millrace TypeScript step under bun or deno: imports ./main.ts, calls its exported
// `main` with the arguments of ./args.json in declaration order and writes
// {"ok": ..., "result"|"error": ...} to ./result.json. The result never travels through stdout.
import { readFileSync, writeFileSync } from "node:fs";
import process from "node:process";

const here = new URL(".", import.meta.url);
const input = JSON.parse(readFileSync(new URL("args.json", here), "utf8"));

function failure(name: string, message: string, stack: string | null): string {
  return JSON.stringify({ ok: false, error: { name, message, stack } });
}

async function run(): Promise<[number, string]> {
  let result: unknown;
  try {
    const mod = await import(new URL("main.ts", here).href);
    if (typeof mod.main !== "function") {
      return [1, failure("MainNotFound", "the script exports no function `main`", null)];
    }
    result = await mod.main(...input.order.map((name: string) => input.args[name]));
  } catch (e) {
    const err = e as { name?: string; message?: string; stack?: string };
    return [1, failure(err?.name ?? "Error", err?.message ?? String(e), err?.stack ?? null)];
  }
  const notJson = "main returned a value that cannot be encoded as JSON";
  let encoded: string | undefined;
  try {
    encoded = result === undefined ? "null" : JSON.stringify(result);
  } catch (e) {
    return [1, failure("ResultNotJson", `${notJson}: ${(e as Error)?.message ?? e}`, null)];
  }
  if (encoded === undefined) {
    return [1, failure("ResultNotJson", `${notJson} (a ${typeof result})`, null)];
  }
  return [0, `{"ok":true,"result":${encoded}}`];
}

const [code, envelope] = await run();
writeFileSync(new URL("result.json", here), envelope);
// Open handles (timers, sockets) left by the script must not keep the step running.
process.exit(code);
