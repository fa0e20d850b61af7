/**
 * Typed `provide` / `inject` keys of the harness (`pgfxTarget`, `pgfxServerUrl`,
 * `pgfxServerBroker`, `pgfxRunId`, `pgfxPrimary`): declared by `@pgfx/testing`.
 */
import type {} from "@pgfx/testing/vitest"

export {}
