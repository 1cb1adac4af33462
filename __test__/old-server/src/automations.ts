// The server's automation sync, as written against the old queue: it checks whether the
// scheduler is on, then upserts the recurring job; rows are read back through Prisma.
import { getScheduler } from '@chaaskit/server'
import { db } from './db'

export async function syncScheduledPrompt(id: string, schedule: string): Promise<'scheduler-off' | 'synced'> {
  const scheduler = getScheduler()
  if (!scheduler) return 'scheduler-off'
  await scheduler.registerRecurring({
    name: `scheduled-prompt:${id}`,
    type: 'scheduled-prompt:execute',
    payload: { scheduledPromptId: id },
    schedule,
  })
  return 'synced'
}

export async function recurringNames(): Promise<string[]> {
  const rows = await db.recurringJob.findMany({ orderBy: { name: 'asc' } })
  return rows.map((r) => r.name)
}

export async function removeScheduledPrompt(id: string): Promise<number> {
  const { count } = await db.recurringJob.deleteMany({ where: { name: `scheduled-prompt:${id}` } })
  return count
}
