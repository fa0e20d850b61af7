/**
 * Typed `provide` / `inject` keys of the test harness (provided per project by
 * `test/global-setup.ts`, read by `test/harness.ts`).
 */
declare module "vitest" {
  export interface ProvidedContext {
    /** Target (project) name: `pg18` or `pg15`. */
    pgfxTarget: string
    /** Superuser URL of the target's server. */
    pgfxServerUrl: string
    /** Id of this test run (the vitest process id); test database names start with `pgfxt_<runId>_`. */
    pgfxRunId: string
    /** True in exactly one project of the run (the first target). */
    pgfxPrimary: boolean
  }
}

export {}
