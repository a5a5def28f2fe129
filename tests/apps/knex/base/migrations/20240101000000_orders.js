exports.up = (knex) =>
  knex.schema.createTable("orders", (t) => {
    t.increments("id");
    t.string("customer").notNullable();
    t.integer("cents").notNullable();
  });

exports.down = (knex) => knex.schema.dropTable("orders");
