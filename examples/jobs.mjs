// A first job module for `shoal node --jobs ./jobs.mjs`: every exported async
// function is a job type by its name, beside the built-ins; `schemas` checks
// inputs at submit (any Standard Schema, or JSON Schema as here). Plain
// JavaScript runs on every Node (Node 23.6+ and Deno also take .ts modules).
//   shoal node --jobs ./examples/jobs.mjs
//   shoal submit greet --input '{"name":"Ada"}' --wait
export const schemas = {
  greet: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1 } } },
};

export async function greet(input, ctx) {
  ctx.log(`greeting ${input.name}`);
  return { greeting: `Hello, ${input.name}!` };
}

/** Counts to input.to, one step per 100 ms, checkpointing each: kill its node and it resumes elsewhere. */
export async function count(input, ctx) {
  let n = ctx.restored?.n ?? 0;
  while (n < (input?.to ?? 20)) {
    await ctx.sleep(100);
    n++;
    await ctx.checkpoint({ n }, n / (input?.to ?? 20));
  }
  return { counted: n, resumedFrom: ctx.restored?.n ?? 0 };
}
