const test = require("node:test");
const assert = require("node:assert");
const knex = require("knex")(require("../knexfile"));

test.after(() => knex.destroy());

test("the dev orders are there", async () => {
  const [{ count }] = await knex("orders").count();
  assert.ok(Number(count) >= 3, `only ${count} orders`);
});
