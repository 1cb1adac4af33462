// A flaky job: delivers a webhook with fetch; the first `failAttempts` attempts fail on
// purpose, so the retry (with backoff) is visible. Without a `url` delivery is simulated.
import { registerJobHandler } from '@chaaskit/server'

export interface WebhookPayload {
  event: string
  url?: string
  data?: unknown
  failAttempts?: number
}

registerJobHandler<WebhookPayload, { status: number }>(
  'webhook:send',
  async (job, ctx) => {
    const { event, url, data, failAttempts = 0 } = job.payload
    if (ctx.attempt <= failAttempts) {
      console.log(`[webhook ${event}] attempt ${ctx.attempt} failed: 503 Service Unavailable (simulated)`)
      throw new Error('webhook endpoint returned 503')
    }
    let status = 200
    if (url) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ event, data }),
        signal: ctx.signal,
      })
      status = res.status
      if (!res.ok) throw new Error(`webhook endpoint returned ${res.status}`)
    }
    console.log(`[webhook ${event}] delivered on attempt ${ctx.attempt} (${status})`)
    return { status }
  },
  'POSTs an event to a webhook URL',
)
