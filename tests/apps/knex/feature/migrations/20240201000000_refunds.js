exports.up = (knex) =>
  knex.schema.createTable("refunds", (t) => {
    t.increments("id");
    t.integer("order_id").notNullable().references("orders.id");
    t.integer("cents").notNullable();
  });

exports.down = (knex) => knex.schema.dropTable("refunds");
