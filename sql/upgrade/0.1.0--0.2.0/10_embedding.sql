-- 10_embedding.sql: comments on the type's support functions and accessors.

COMMENT ON FUNCTION embedding_in(cstring, oid, integer) IS 'embedding text input (type support)';
COMMENT ON FUNCTION embedding_out(embedding) IS 'embedding text output (type support)';
COMMENT ON FUNCTION embedding_recv(internal, oid, integer) IS 'embedding binary input (type support)';
COMMENT ON FUNCTION embedding_send(embedding) IS 'embedding binary output (type support)';
COMMENT ON FUNCTION embedding_typmod_in(cstring[]) IS 'reads the typmod embedding(n) (type support)';
COMMENT ON FUNCTION embedding_typmod_out(integer) IS 'writes the typmod embedding(n) (type support)';
COMMENT ON FUNCTION embedding(embedding, integer, boolean) IS
	'checks an embedding against the typmod embedding(n) (the cast to embedding(n))';
COMMENT ON FUNCTION fct_array_to_embedding(real[], integer, boolean) IS
	'real[] to embedding without model or side-information (the cast)';
COMMENT ON FUNCTION fct_array_to_embedding(double precision[], integer, boolean) IS
	'double precision[] to embedding without model or side-information (the cast)';
COMMENT ON FUNCTION fct_array_to_embedding(integer[], integer, boolean) IS
	'integer[] to embedding without model or side-information (the cast)';
COMMENT ON FUNCTION fct_array_to_embedding(numeric[], integer, boolean) IS
	'numeric[] to embedding without model or side-information (the cast)';
COMMENT ON FUNCTION fct_embedding(real[], real[], text) IS
	'builds an embedding from its vector, optional side-information and optional model name';
COMMENT ON FUNCTION fct_model(embedding) IS 'the name of the model of an embedding (NULL: no model)';
COMMENT ON FUNCTION fct_vector(embedding) IS 'the vector part of an embedding';
COMMENT ON FUNCTION fct_side(embedding) IS 'the side-information of an embedding (empty when it has none)';
COMMENT ON FUNCTION fct_dims(embedding) IS 'the number of dimensions of the vector part';
COMMENT ON FUNCTION fct_side_dims(embedding) IS 'the number of side-information values';
COMMENT ON FUNCTION fct_norm(embedding) IS 'the Euclidean norm of the vector part';
COMMENT ON FUNCTION fct_normalize(embedding) IS
	'the embedding with its vector part scaled to norm 1 (model and side-information kept)';
COMMENT ON FUNCTION embedding_cmp(embedding, embedding) IS 'btree order of embeddings (operator class support)';
COMMENT ON FUNCTION embedding_eq(embedding, embedding) IS 'equal: same model, dimensions and values (the = operator)';
COMMENT ON FUNCTION embedding_ne(embedding, embedding) IS 'not equal (the <> operator)';
COMMENT ON FUNCTION embedding_lt(embedding, embedding) IS 'less than in the btree order (the < operator)';
COMMENT ON FUNCTION embedding_le(embedding, embedding) IS 'less or equal in the btree order (the <= operator)';
COMMENT ON FUNCTION embedding_gt(embedding, embedding) IS 'greater than in the btree order (the > operator)';
COMMENT ON FUNCTION embedding_ge(embedding, embedding) IS 'greater or equal in the btree order (the >= operator)';
COMMENT ON FUNCTION embedding_hash(embedding) IS 'hash of an embedding (operator class support)';
COMMENT ON FUNCTION embedding_hash_extended(embedding, bigint) IS
	'seeded 64-bit hash of an embedding (operator class support)';
