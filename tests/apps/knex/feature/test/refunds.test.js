const test = require("node:test");
const assert = require("node:assert");
const knex = require("knex")(require("../knexfile"));

test.after(() => knex.destroy());

test("an order can be refunded", async () => {
  const [order] = await knex("orders").select("id").orderBy("id").limit(1);
  const [refund] = await knex("refunds").insert({ order_id: order.id, cents: 100 }).returning("id");
  assert.ok(refund.id > 0);
  await knex("refunds").where({ id: refund.id }).del();
});
