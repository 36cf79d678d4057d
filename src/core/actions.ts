// The four things a grant can allow on its directory. The order is the canonical one
// (list, read, write, delete): cache keys, policies and responses list actions in it.
export const ACTIONS = ['list', 'read', 'write', 'delete'] as const

export type Action = typeof ACTIONS[number]

export function isAction (value: unknown): value is Action {
  return (ACTIONS as readonly unknown[]).includes(value)
}
