/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): the functions with the
 * most self time, self time per package / pgfx source file, and the
 * inclusive time of pgfx's own functions.
 *
 *   node --cpu-prof --cpu-prof-dir=.tmp/prof --import ./scripts/node20-polyfills.mjs --import tsx \
 *     bench/run.ts --only W1 --clients pgfx --no-ceilings --out .tmp/prof-results
 *   npx tsx bench/profile.ts .tmp/prof/CPU.*.cpuprofile [top=25]
 */
import * as fs from "node:fs"

interface Node {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly children?: ReadonlyArray<number>
}

interface Profile {
  readonly nodes: ReadonlyArray<Node>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/** Where a function lives: a package name, a pgfx source file, node internals, or V8's own bins. */
const placeOf = (url: string, name: string): string => {
  if (url === "") return `(${name || "native"})`
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return pkg[1]
  const own = /\/(packages\/[^/]+\/src\/.*|bench\/.*|test\/.*)$/.exec(url)
  if (own !== null) return own[1]
  if (url.startsWith("node:")) return "node internals"
  return url
}

export const summarise = (profile: Profile, top: number): string => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const byFunction = new Map<string, number>()
  const byPlace = new Map<string, number>()
  for (const [id, us] of self) {
    const node = byId.get(id)!
    const { functionName, url, lineNumber } = node.callFrame
    const place = placeOf(url, functionName)
    const key = `${functionName || "(anonymous)"}  ${place}${url === "" ? "" : `:${lineNumber + 1}`}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + us)
    byPlace.set(place, (byPlace.get(place) ?? 0) + us)
  }
  const lines = (map: Map<string, number>) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([key, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${key}`)
  // inclusive time of pgfx's own functions: each sample counts once for every function on its stack
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const inclusive = new Map<string, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const seen = new Set<string>()
    for (let id: number | undefined = profile.samples[i]; id !== undefined; id = parent.get(id)) {
      const { functionName, url, lineNumber } = byId.get(id)!.callFrame
      if (!/\/packages\/[^/]+\/src\//.test(url)) continue
      seen.add(`${functionName || "(anonymous)"}  ${placeOf(url, functionName)}:${lineNumber + 1}`)
    }
    for (const key of seen) inclusive.set(key, (inclusive.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0))
  }
  return [
    `total sampled: ${(total / 1000).toFixed(0)} ms`,
    "",
    "self time by function:",
    ...lines(byFunction),
    "",
    "self time by package / source file:",
    ...lines(byPlace),
    "",
    "inclusive time of pgfx functions (packages/*/src):",
    ...lines(inclusive)
  ].join("\n")
}

const isMain = process.argv[1] !== undefined && /profile\.ts$/.test(process.argv[1])
if (isMain) {
  const [file, top = "25"] = process.argv.slice(2)
  if (file === undefined) {
    console.error("usage: tsx bench/profile.ts <file.cpuprofile> [top]")
    process.exit(2)
  }
  console.log(summarise(JSON.parse(fs.readFileSync(file, "utf8")) as Profile, Number(top)))
}
