// Route validators and response serialisers are compiled on the first request that
// needs them instead of when the app becomes ready: loading ajv and compiling the
// request schemas was ~100 ms of a ~0.9 s start-up (issue 17), and a route nobody calls
// never pays. The compilers are Fastify's own defaults (@fastify/ajv-compiler,
// @fastify/fast-json-stringify-compiler), required and called late with exactly the
// external schemas and options Fastify hands them, so the 400 answers (`.errors`) and
// the serialised bytes are the ones Fastify's eager path gives. The price is paid once,
// by the first request of each route (~70 ms for the first validated one, ajv's load).
//
// Where this differs from the eager path:
// - Fastify stops lowercasing header-name schemas for a compiler it did not pick
//   (`isCustomValidatorCompiler`), so a `schema.headers` route is refused at start
//   rather than silently validated case-sensitively;
// - a schema that does not compile fails its first request (a 500) instead of the
//   start: test/http/lazy-compilers.test.ts compiles every route's schemas.
import { channel } from 'node:diagnostics_channel'
import { createRequire } from 'node:module'
import type { ValidatorFactory } from '@fastify/ajv-compiler'
import type { SerializerFactory } from '@fastify/fast-json-stringify-compiler'

const require = createRequire(import.meta.url)

type AjvCompilerModule = typeof import('@fastify/ajv-compiler')
type SerializerModule = typeof import('@fastify/fast-json-stringify-compiler')
type Validate = ReturnType<ReturnType<ValidatorFactory>>
type Serialize = ReturnType<ReturnType<SerializerFactory>>

/**
 * Published on {@link compileChannel}: `deferred` when Fastify hands a route part over at
 * start (with `compile`, which compiles it now), `compiled` when it is actually compiled.
 */
export interface CompileEvent {
  phase: 'deferred' | 'compiled'
  kind: 'validator' | 'serializer'
  method: string | undefined
  url: string | undefined
  /** `body`, `querystring`, `params` for a validator; the status key (`200`, `4xx`) for a serialiser. */
  part: string | undefined
  compile?: () => void
}

/** Tests and tracing subscribe; without a subscriber nothing is published. */
export const compileChannel = channel('sts-vending:schema-compile')

function where (route: { method?: string, url?: string }): { method: string | undefined, url: string | undefined } {
  return { method: route.method, url: route.url }
}

/** `compile` once, on first use; Fastify is handed `make(get)`, the stand-in that calls it. `pending` holds it until then. */
function deferred<T, F> (event: Omit<CompileEvent, 'phase' | 'compile'>, compile: () => T, make: (get: () => T) => F, pending: Set<() => unknown>): F {
  let real: T | undefined
  const get = (): T => {
    if (real === undefined) {
      real = compile()
      pending.delete(get)
      if (compileChannel.hasSubscribers) compileChannel.publish({ ...event, phase: 'compiled' })
    }
    return real
  }
  pending.add(get)
  if (compileChannel.hasSubscribers) compileChannel.publish({ ...event, phase: 'deferred', compile: () => { get() } })
  return make(get)
}

/** A stand-in for an ajv validate function. */
function lazyValidator (get: () => Validate): Validate {
  const validate = function (this: unknown, ...args: unknown[]): unknown {
    return Reflect.apply(get(), this, args)
  }
  // Fastify reads `schemaEnv` before the call (an ajv function is given its parent
  // data) and `errors` after it: both are the compiled function's own.
  Object.defineProperties(validate, {
    schemaEnv: { get: () => get().schemaEnv },
    errors: { get: () => get().errors }
  })
  return validate as unknown as Validate
}

function lazySerializer (get: () => Serialize): Serialize {
  return (doc) => get()(doc)
}

export interface LazyCompilers {
  buildValidator: ValidatorFactory
  buildSerializer: SerializerFactory
  /**
   * Compiles every part not compiled yet (app.ts calls it shortly after listening, so
   * that no caller's first request pays for it). Returns how many failed to compile:
   * those fail their first request (500), as they would have failed the start.
   */
  compileAll: () => number
  /** Compiles one part not compiled yet: true when it compiled, false when it failed, undefined when none is left (warm-up.ts, one per event-loop turn). */
  compileNext: () => boolean | undefined
}

/** Fastify's default compilers, each loaded, built and run on the first request that needs it. */
export function lazyCompilers (): LazyCompilers {
  const pending = new Set<() => unknown>()
  // One selector per app, like Fastify's schema controller: its pool is keyed by the
  // external schemas and options, so encapsulated contexts share ajv instances as before.
  let validatorSelector: ReturnType<AjvCompilerModule> | undefined
  let serializerSelector: ReturnType<SerializerModule> | undefined

  const buildValidator = ((externalSchemas, options) => {
    let compiler: ReturnType<ValidatorFactory> | undefined
    const compilerOf = (): ReturnType<ValidatorFactory> => {
      validatorSelector ??= (require('@fastify/ajv-compiler') as AjvCompilerModule)()
      return (compiler ??= validatorSelector(externalSchemas, options))
    }
    return (route) => {
      if (route.httpPart === 'headers') {
        throw new Error('header schemas are not supported: Fastify lowercases their names only for its own eager compiler (src/http/lazy-compilers.ts)')
      }
      return deferred({ kind: 'validator', ...where(route), part: route.httpPart }, () => compilerOf()(route), lazyValidator, pending)
    }
  }) as ValidatorFactory

  const buildSerializer: SerializerFactory = (externalSchemas, options) => {
    let compiler: ReturnType<SerializerFactory> | undefined
    const compilerOf = (): ReturnType<SerializerFactory> => {
      serializerSelector ??= (require('@fastify/fast-json-stringify-compiler') as SerializerModule)()
      return (compiler ??= serializerSelector(externalSchemas, options))
    }
    return (route) => {
      return deferred({ kind: 'serializer', ...where(route), part: route.httpStatus }, () => compilerOf()(route), lazySerializer, pending)
    }
  }

  const compileNext = (): boolean | undefined => {
    const get = pending.values().next().value
    if (get === undefined) return undefined
    try {
      get()
      // A compiled part leaves `pending` itself (deferred); make sure it cannot come round again.
      pending.delete(get)
      return true
    } catch {
      pending.delete(get) // its first request will try again, and answer 500
      return false
    }
  }

  const compileAll = (): number => {
    let failed = 0
    for (let done = compileNext(); done !== undefined; done = compileNext()) if (!done) failed++
    return failed
  }

  return { buildValidator, buildSerializer, compileAll, compileNext }
}
