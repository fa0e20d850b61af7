CREATE TABLE users (
  id int PRIMARY KEY,
  name text NOT NULL,
  email text UNIQUE
);
