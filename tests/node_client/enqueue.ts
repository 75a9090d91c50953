// Enqueues a message through a client generated from the service's own document:
// `openapi-typescript openapi.json -o api.ts` writes the types, openapi-fetch makes the calls,
// and `tsc` checks this file against them (a body the document does not describe fails there).
// Prints {"id", "state", "refused"} as JSON; exits 1 on any unexpected answer.
import createClient from "openapi-fetch";
import type { paths } from "./api.js";

declare const process: {
  env: Record<string, string | undefined>;
  exit(code: number): never;
};

const baseUrl = process.env.API_URL;
const token = process.env.API_TOKEN;
if (!baseUrl || !token) {
  console.error("set API_URL and API_TOKEN");
  process.exit(1);
}
const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });

const sent = await client.POST("/v1/messages", {
  params: { header: { "Idempotency-Key": "node-client-order-1042" } },
  body: { to: "+90 532 123 45 67", type: "text", text: { body: "Your order 1042 has shipped." } },
});
if (sent.response.status !== 202 || !sent.data) {
  console.error("enqueue:", sent.response.status, JSON.stringify(sent.error));
  process.exit(1);
}

const job = await client.GET("/v1/jobs/{job_id}", {
  params: { path: { job_id: sent.data.id } },
});
if (!job.data) {
  console.error("job:", job.response.status, JSON.stringify(job.error));
  process.exit(1);
}

// A bad request comes back as the service's own error shape, typed: the fields and why.
const refused = await client.POST("/v1/messages", {
  body: { to: "0532 123 45 67", type: "text", text: { body: "no country code" } },
});
if (refused.response.status !== 422 || !refused.error || !("errors" in refused.error)) {
  console.error("refusal:", refused.response.status, JSON.stringify(refused.error));
  process.exit(1);
}

console.log(
  JSON.stringify({
    id: sent.data.id,
    state: job.data.state,
    refused: refused.error.errors.map((e) => e.field),
  }),
);
