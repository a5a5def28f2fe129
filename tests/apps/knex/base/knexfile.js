// The database from DATABASE_URL in .env (its query string included: application_name, connect_timeout).
require("dotenv").config({ quiet: true });

module.exports = {
  client: "pg",
  connection: process.env.DATABASE_URL,
  pool: { min: 0, max: 2 },
  migrations: { directory: "./migrations" },
};
