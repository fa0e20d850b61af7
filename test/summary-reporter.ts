/**
 * A vitest reporter that ends the run with one plain line, summed over all projects:
 *
 *     N passed, N failed            (followed by ", N skipped" when tests were skipped)
 *
 * A test file that failed without a failing test (import error, failing `afterAll`) counts as one
 * failure, and so does each unhandled error, so a failing run never reports "0 failed".
 * Skipped counts skipped and todo tests and, in an interrupted run, tests that never ran.
 */
import type { Reporter, TestModule } from "vitest/node"

export interface RunCounts {
  readonly passed: number
  readonly failed: number
  readonly skipped: number
}

/** Count test results over the modules of a run. */
export const countResults = (modules: ReadonlyArray<TestModule>, unhandledErrors: number): RunCounts => {
  let passed = 0
  let failed = unhandledErrors
  let skipped = 0
  for (const module of modules) {
    let failedHere = 0
    for (const test of module.children.allTests()) {
      switch (test.result().state) {
        case "passed":
          passed++
          break
        case "failed":
          failed++
          failedHere++
          break
        default:
          skipped++
      }
    }
    if (failedHere === 0 && module.state() === "failed") failed++
  }
  return { passed, failed, skipped }
}

/** Render the summary line. */
export const summaryLine = ({ failed, passed, skipped }: RunCounts): string =>
  `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`

export class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    process.stdout.write(`\n${summaryLine(countResults(testModules, unhandledErrors.length))}\n`)
  }
}

export default SummaryReporter
