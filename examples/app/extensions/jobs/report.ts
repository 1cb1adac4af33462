// A long job: builds a report page by page, reporting progress (getJob shows it) and
// stopping early when its signal aborts (timeout or a forced shutdown).
import { registerJobHandler } from '@chaaskit/server'

export interface ReportPayload {
  reportId: string
  pages?: number
  msPerPage?: number
}

export interface ReportResult {
  reportId: string
  pages: number
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

registerJobHandler<ReportPayload, ReportResult>(
  'report:generate',
  async (job, ctx) => {
    const { reportId, pages = 5, msPerPage = 200 } = job.payload
    console.log(`[report ${reportId}] started (attempt ${ctx.attempt})`)
    for (let page = 1; page <= pages; page++) {
      await pause(msPerPage, ctx.signal)
      const percent = Math.round((page * 100) / pages)
      ctx.progress(percent)
      console.log(`[report ${reportId}] ${percent}%`)
    }
    console.log(`[report ${reportId}] done`)
    return { reportId, pages }
  },
  'Builds a report page by page',
)
