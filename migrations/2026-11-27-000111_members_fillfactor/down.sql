ALTER TABLE members RESET (fillfactor);
