// A handler written as the server's scheduled-prompt handlers are.
import { registerJobHandler, type ReceivedJob, type JobContext } from '@chaaskit/server'

export interface ScheduledPromptExecutePayload {
  scheduledPromptId: string
}

registerJobHandler<ScheduledPromptExecutePayload>(
  'scheduled-prompt:execute',
  async (job: ReceivedJob<ScheduledPromptExecutePayload>, ctx: JobContext) => {
    const { scheduledPromptId } = job.payload
    ctx.log(`Executing scheduled prompt: ${scheduledPromptId}`)
    const receipt = typeof job.receiptHandle === 'string' && job.receiptHandle.length > 0
    console.log(`[scheduled-prompt] ran ${scheduledPromptId} attempt=${ctx.attempt} receiptHandle=${receipt}`)
  },
  'Execute scheduled prompt and store result',
)
