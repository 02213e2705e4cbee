mod search;
mod space;
