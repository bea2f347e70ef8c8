/* tests/fuzz/fuzz_model.c - a model directory (hfdir.c red_model_load):
 * the input is model.safetensors next to a fixed config.json of a tiny Llama
 * (GQA, llama3 RoPE, tied embeddings, 540 parameters, so each input costs
 * microseconds, not a model's allocation), and the loader's checks of names,
 * shapes, dtypes and values against the config are reached. The seeds are
 * that model as red init writes it (F32) and converted to BF16 by Python
 * (tests/fuzz/make_corpus.sh writes the same config). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char config[] =
        "{\"model_type\": \"llama\", \"hidden_size\": 8, \"intermediate_size\": 8, \"num_hidden_layers\": 1, "
        "\"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"head_dim\": 4, \"vocab_size\": 16, \"rms_norm_eps\": "
        "1e-05, \"rope_theta\": 500000.0, \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
        "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 16}, "
        "\"tie_word_embeddings\": true, \"bos_token_id\": 1, \"eos_token_id\": 2, \"max_position_embeddings\": 64}";
    static int have_config;
    red_model m;
    red_error err;
    if (!have_config) {
        fuzz_file("config.json", (const uint8_t *)config, sizeof config - 1);
        have_config = 1;
    }
    fuzz_file("model.safetensors", data, size);
    if (red_model_load(&m, fuzz_dir(), NULL, &err) == RED_OK) red_model_free(&m);
    return 0;
}
