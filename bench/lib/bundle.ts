/**
 * Bundles a bench entry with esbuild into one ES module that plain `node`
 * runs — no tsx in the process, so memory figures are an application's.
 */
import * as os from "node:os"
import * as path from "node:path"
import { build } from "esbuild"
import { benchDir } from "./child.ts"

export const bundle = async (entry: string, name: string, define: Record<string, string> = {}): Promise<string> => {
  const outfile = path.join(os.tmpdir(), `pgfx-bench-${process.pid}-${name}.mjs`)
  await build({
    entryPoints: [path.join(benchDir, entry)],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    // folds the `define`d client name so the other clients' branches (and imports) drop out
    minifySyntax: true,
    define,
    // optional native / edge-runtime modules of pg
    external: ["pg-native", "cloudflare:sockets"],
    // CommonJS packages inside an ES module bundle still call require()
    banner: { js: "import { createRequire as __pgfxCreateRequire } from 'node:module'; const require = __pgfxCreateRequire(import.meta.url);" },
    logLevel: "silent"
  })
  return outfile
}
