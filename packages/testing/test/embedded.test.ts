/**
 * The embedded server wherever the checkout lives: the binary cache every user can reach, typed
 * errors when the binaries cannot be executed, and (as root) a server whose binaries and temp
 * directory lie in a 0700 folder the server's OS user cannot enter.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { EmbeddedServer } from "@pgfx/testing"
import { Effect } from "effect"
import {
  binaryCache,
  isRoot,
  type OsUser,
  packagedNativeDir,
  traversableBy
} from "../src/internal/embeddedBinaries.ts"
import { startServer } from "../src/internal/embeddedServerStart.ts"

/** Anybody else: no owner or group in common with the files. */
const stranger: OsUser = { name: "nobody", uid: 65534, gid: 65534 }

/** A directory under the temp dir, removed after `use`. */
const withTempDir = async <A>(mode: number, use: (dir: string) => Promise<A>): Promise<A> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pgfx-embedded-test-"))
  fs.chmodSync(dir, mode)
  try {
    return await use(dir)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** Every entry below `dir`, depth first. */
const walk = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name)
    return entry.isDirectory() ? [file, ...walk(file)] : [file]
  })

/** A fake `native/` tree whose `bin/initdb` and `bin/postgres` are `make(file)`. */
const fakeNative = (root: string, make: (file: string) => void): string => {
  const native = path.join(root, "native")
  fs.mkdirSync(path.join(native, "bin"), { recursive: true })
  for (const program of ["initdb", "postgres"]) make(path.join(native, "bin", program))
  return native
}

const startError = async (nativeDir: string, tmpRoot: string): Promise<EmbeddedServer.EmbeddedServerError> => {
  const error = await startServer({}, undefined, { nativeDir, tmpRoot }).then(
    (server) => {
      void Effect.runPromise(server.remove)
      throw new Error("the server started")
    },
    (e: unknown) => e
  )
  assert.instanceOf(error, EmbeddedServer.EmbeddedServerError)
  return error as EmbeddedServer.EmbeddedServerError
}

describe("EmbeddedServer binaries", () => {
  it("the binary cache is readable and traversable by every user, made once, safe to race", async () => {
    await withTempDir(0o755, async (root) => {
      const native = packagedNativeDir()
      // two processes' worth of racing copies end in one cache and no leftovers
      const [first, second] = await Promise.all([binaryCache(native, root), binaryCache(native, root)])
      assert.strictEqual(first, second)
      assert.deepStrictEqual(fs.readdirSync(root), [path.basename(first)])
      assert.isTrue(traversableBy(first, stranger), `${first} and every directory above it are traversable`)
      for (const file of [first, ...walk(first)]) {
        const stat = fs.lstatSync(file)
        if (stat.isSymbolicLink()) continue
        const mode = stat.mode & 0o777
        assert.strictEqual(mode & 0o022, 0, `${file} is writable only by its owner`)
        if (stat.isDirectory()) assert.strictEqual(mode, 0o755, `${file} is a 0755 directory`)
        else assert.strictEqual(mode & 0o004, 0o004, `${file} is world-readable`)
      }
      for (const program of ["initdb", "postgres"]) {
        assert.strictEqual(fs.statSync(path.join(first, "bin", program)).mode & 0o777, 0o755, `${program} is executable by all`)
      }
      // made once: a second call reuses it
      const mtime = fs.statSync(first).mtimeMs
      assert.strictEqual(await binaryCache(native, root), first)
      assert.strictEqual(fs.statSync(first).mtimeMs, mtime)
      // a copy thinned out by a tmp cleaner is made again
      const library = walk(path.join(first, "lib")).find((file) => fs.statSync(file).isFile())
      assert.isDefined(library)
      fs.rmSync(library!)
      assert.strictEqual(await binaryCache(native, root), first)
      assert.isTrue(fs.existsSync(library!), `${library} is back`)
    })
  }, 60_000)

  it("a cache directory others can write to is refused with a typed error", async () => {
    await withTempDir(0o755, async (root) => {
      const native = fakeNative(root, (file) => fs.writeFileSync(file, "#!/bin/sh\n", { mode: 0o755 }))
      const cache = await binaryCache(native, root)
      fs.chmodSync(cache, 0o777)
      const error = await binaryCache(native, root).then(() => undefined, (e: unknown) => e)
      assert.instanceOf(error, EmbeddedServer.EmbeddedServerError)
      assert.strictEqual((error as EmbeddedServer.EmbeddedServerError).reason, "BinaryCache")
      assert.include((error as Error).message, cache)
    })
  })

  it("binaries that cannot be executed: a typed Spawn error saying what to do, nothing left behind", async () => {
    await withTempDir(0o755, async (root) => {
      // a directory where the program should be: EACCES
      const notExecutable = fakeNative(path.join(root, "eacces"), (file) => fs.mkdirSync(file))
      const eacces = await startError(notExecutable, root)
      assert.strictEqual(eacces.reason, "Spawn")
      assert.match(eacces.message, /cannot execute .*initdb.*EACCES/)
      assert.include(eacces.message, "DATABASE_URL")
      // a script whose interpreter does not exist: ENOENT
      const noInterpreter = fakeNative(
        path.join(root, "enoent"),
        (file) => fs.writeFileSync(file, "#!/nonexistent/interpreter\n", { mode: 0o755 })
      )
      const enoent = await startError(noInterpreter, root)
      assert.strictEqual(enoent.reason, "Spawn")
      assert.match(enoent.message, /cannot execute .*initdb.*ENOENT/)
      // no server directory is left in the temp root
      assert.deepStrictEqual(fs.readdirSync(root).filter((name) => name.startsWith("pgfx-pg-")), [])
    })
  }, 30_000)

  it("an impossible host is a typed InvalidOptions error", async () => {
    const error = await Effect.runPromise(Effect.flip(EmbeddedServer.makeEmbeddedServer({ host: "localhost" })))
    assert.strictEqual(error._tag, "EmbeddedServerError")
    assert.strictEqual(error.reason, "InvalidOptions")
  })

  it.skipIf(!isRoot())(
    "as root (skipped when not root): binaries and TMPDIR in a 0700 folder the server user cannot enter",
    async () => {
      await withTempDir(0o700, async (home) => {
        // a checkout in /root or a `mktemp -d` folder: node_modules out of the server user's reach
        const native = path.join(home, "checkout", "node_modules", "native")
        fs.cpSync(packagedNativeDir(), native, { recursive: true, verbatimSymlinks: true })
        const server = await startServer({ label: "pgfx-0700" }, undefined, { nativeDir: native, tmpRoot: home })
        let cacheDir: string | undefined
        try {
          const pid = server.pid()
          assert.isDefined(pid)
          const exe = fs.readlinkSync(`/proc/${pid}/exe`)
          cacheDir = path.dirname(path.dirname(exe))
          assert.isFalse(exe.startsWith(home), `the server runs ${exe}, not the copy in the 0700 folder`)
          assert.isFalse(server.baseDir.startsWith(home), "the server's directory is outside the 0700 folder")
          const postgresUid = fs.statSync(server.dataDir).uid
          assert.notStrictEqual(postgresUid, 0, "the data directory belongs to the server's OS user")
          assert.strictEqual(fs.statSync(`/proc/${pid}`).uid, postgresUid)
          const rows = await Effect.runPromise(server.query("SELECT current_user AS u, 1 + 1 AS two"))
          assert.deepStrictEqual(rows, [{ u: "postgres", two: 2 }])
        } finally {
          await Effect.runPromise(server.remove)
          if (cacheDir !== undefined && cacheDir.startsWith(os.tmpdir())) fs.rmSync(cacheDir, { recursive: true, force: true })
        }
        assert.isFalse(fs.existsSync(server.baseDir), "the server's directory is removed")
      })
    },
    60_000
  )
})
