/**
 * The bench's baseline: a bare onnxruntime-node HTTP server on node:http, with the same cluster
 * layout as the gateway (one worker per requested core, shared port), serving the same model file:
 * parse the JSON body, build the feeds, run the session, answer the score. No auth, no limits, no
 * validation, no logs. Started by test/bench/gateway.bench.ts as its own process tree.
 *
 *   BARE_MODEL_DIR=<dir with model.onnx and input_schema.json> BARE_WORKERS=2 npx tsx test/bench/gateway-bare.ts
 */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import * as ort from 'onnxruntime-node';

interface Input {
  name: string;
  dtype: 'float32' | 'string';
}

async function serve(): Promise<void> {
  const dir = process.env.BARE_MODEL_DIR as string;
  const schema = JSON.parse(readFileSync(path.join(dir, 'input_schema.json'), 'utf8')) as {
    inputs: Input[];
    probabilityOutput: string;
    positiveClassIndex: number;
  };
  const session = await ort.InferenceSession.create(readFileSync(path.join(dir, 'model.onnx')), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const features = (
        JSON.parse(Buffer.concat(chunks).toString('utf8')) as { features: Record<string, unknown> }
      ).features;
      const feeds: Record<string, ort.Tensor> = {};
      for (const input of schema.inputs) {
        const v = features[input.name];
        feeds[input.name] =
          input.dtype === 'float32'
            ? new ort.Tensor('float32', Float32Array.of(typeof v === 'number' ? v : Number.NaN), [1, 1])
            : new ort.Tensor('string', [typeof v === 'string' ? v : ''], [1, 1]);
      }
      session.run(feeds, [schema.probabilityOutput]).then(
        (out) => {
          const score = (out[schema.probabilityOutput]?.data as Float32Array)[schema.positiveClassIndex];
          const body = JSON.stringify({ score });
          res.writeHead(200, {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          });
          res.end(body);
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
    });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(Number(process.env.BARE_PORT ?? 0), '127.0.0.1');
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

if (cluster.isPrimary) {
  const workers = Number(process.env.BARE_WORKERS ?? 1);
  for (let i = 0; i < workers; i++) cluster.fork();
  let listening = 0;
  cluster.on('listening', (_w, address) => {
    if (++listening === workers) process.send?.(`http://127.0.0.1:${address.port}`);
  });
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    });
  });
} else {
  void serve();
}
