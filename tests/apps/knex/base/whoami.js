// Prints what the server sees of this app's connection, as JSON.
const knex = require("knex")(require("./knexfile"));

knex
  .raw("SELECT current_setting('application_name') AS application_name, current_database() AS database")
  .then((result) => console.log(JSON.stringify(result.rows[0])))
  .finally(() => knex.destroy());
