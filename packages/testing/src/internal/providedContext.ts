/**
 * Typed `provide` / `inject` keys of the harness: provided per vitest project by the
 * `@pgfx/testing/global-setup` module (and the project config of `@pgfx/testing/vitest-config`),
 * read in the test workers.
 *
 * @internal
 */
declare module "vitest" {
  export interface ProvidedContext {
    /** Target (project) name, e.g. `pg18` or `pg15`. */
    pgfxTarget: string
    /** Superuser URL of the target's server; `""`: ask the broker (embedded server, started lazily). */
    pgfxServerUrl: string
    /** Where a worker asks for the lazily started embedded server (`http://127.0.0.1:<port>/<token>`); `""`: none. */
    pgfxServerBroker: string
    /** Id of this test run (the vitest process id); database names start with `pgfxt_<runId>_`. */
    pgfxRunId: string
    /** True in exactly one project of the run (the first target). */
    pgfxPrimary: boolean
  }
}

export {}
