DROP INDEX members_directory_idx;
