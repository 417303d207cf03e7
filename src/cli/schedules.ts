/**
 * `npm run schedules -- [--file deploy/schedules.json] [--task-queue mlops]`: applies the Temporal
 * Schedules declared in a file, creating the missing ones and updating the others in place
 * (idempotent: applying twice leaves one schedule per id). Every schedule uses overlap policy SKIP,
 * so runs never pile up (the model lock keeps pipelines of one model apart in any case).
 */
import { readFile } from 'node:fs/promises';
import { Client, Connection, ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { z } from 'zod';

/** Schedules file applied when none is named. */
export const DEFAULT_SCHEDULES_FILE = 'deploy/schedules.json';
/** Task queue of the scheduled workflows when none is named. */
export const DEFAULT_TASK_QUEUE = 'mlops';

const ScheduleSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'id: lowercase letters, digits and dashes'),
    interval: z.string().optional(),
    cron: z.string().optional(),
    workflowType: z.enum(['driftMonitor', 'newDataCheck', 'retrainingPipeline']),
    workflowId: z.string().min(1),
    input: z.record(z.string(), z.unknown()),
  })
  .strict()
  .refine((s) => (s.interval === undefined) !== (s.cron === undefined), {
    message: 'exactly one of interval and cron',
    path: ['interval'],
  });
export const SchedulesFileSchema = z.object({ schedules: z.array(ScheduleSchema) }).strict();
export type ScheduleDecl = z.infer<typeof ScheduleSchema>;

export async function applySchedules(
  client: Client,
  decls: readonly ScheduleDecl[],
  taskQueue: string,
): Promise<{ id: string; action: 'created' | 'updated' }[]> {
  const out: { id: string; action: 'created' | 'updated' }[] = [];
  for (const d of decls) {
    const spec = d.interval
      ? { intervals: [{ every: d.interval as `${number}${'s' | 'm' | 'h' | 'd'}` }] }
      : { cronExpressions: [d.cron!] };
    const action = {
      type: 'startWorkflow' as const,
      workflowType: d.workflowType,
      workflowId: d.workflowId,
      taskQueue,
      args: [d.input],
    };
    const policies = { overlap: ScheduleOverlapPolicy.SKIP };
    try {
      await client.schedule
        .getHandle(d.id)
        .update((prev) => ({ ...prev, spec, action, policies: { ...prev.policies, ...policies } }));
      out.push({ id: d.id, action: 'updated' });
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      await client.schedule.create({ scheduleId: d.id, spec, action, policies });
      out.push({ id: d.id, action: 'created' });
    }
  }
  return out;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string, fallback: string): string => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
  };
  const file = opt('--file', DEFAULT_SCHEDULES_FILE);
  const parsed = SchedulesFileSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${file}: ${issue.path.join('.')}: ${issue.message}`);
  }
  const { connectionOptions, namespace } = loadClientConnectConfig();
  const connection = await Connection.connect(connectionOptions);
  try {
    const client = new Client({ connection, namespace });
    for (const r of await applySchedules(
      client,
      parsed.data.schedules,
      opt('--task-queue', DEFAULT_TASK_QUEUE),
    ))
      console.log(`${r.action} ${r.id}`);
  } finally {
    await connection.close();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
