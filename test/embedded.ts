/**
 * Embedded PostgreSQL servers for tests, examples, benchmarks and the demo: a re-export of
 * `@pgfx/testing`'s `EmbeddedServer` module (see there).
 */
import { EmbeddedServer as Embedded } from "@pgfx/testing"

/** A pg_hba.conf authentication method. */
export type AuthMethod = Embedded.AuthMethod
/** A structured pg_hba.conf rule. */
export type HbaRule = Embedded.HbaRule
/** A login role created after start. */
export type ServerUser = Embedded.ServerUser
/** How to set up an embedded server. */
export type EmbeddedServerOptions = Embedded.EmbeddedServerOptions
/** A running (or stopped) embedded server. */
export type EmbeddedServer = Embedded.EmbeddedServer

/** Start an embedded server; it is stopped and deleted when the scope closes. */
export const embeddedServer = Embedded.embeddedServer
/** A hot standby of an embedded server (a copy of its data directory), removed with the scope. */
export const standbyOf = Embedded.standbyOf
/** Start an embedded server without a scope: the caller must run `remove`. */
export const makeEmbeddedServer = Embedded.makeEmbeddedServer
/** `DATABASE_URL` when set, otherwise the URL of a fresh embedded server that lives as long as the scope. */
export const databaseUrlOrEmbedded = Embedded.databaseUrlOrEmbedded
/** Run `use` with {@link databaseUrlOrEmbedded}'s URL; an embedded server is removed afterwards. */
export const withEmbeddedServer = Embedded.withEmbeddedServer
/** A free TCP port on 127.0.0.1. */
export const freePort = Embedded.freePort
